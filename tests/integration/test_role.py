"""The storage role and the getting started playbook, run by ansible-playbook on this host."""

from __future__ import annotations

import os
import re
import shutil

import yaml
from _state import mounts, registry, snapshot

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(REPO, "inventories", "local", "hosts.yml")


def _recap(stdout):
    found = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout)
    assert found, stdout[-2000:]
    return {k: int(v) for k, v in zip(("ok", "changed", "unreachable", "failed"), found.groups())}


def _play(storages):
    return yaml.safe_dump(
        [
            {
                "name": "storage role",
                "hosts": "vdi_hosts",
                "gather_facts": False,
                "vars": {"flexvdi_image_storages": storages},
                "roles": [{"role": "flexvdi.storage.storage"}],
            }
        ]
    )


def test_role_check_real_again_then_absent(run_playbook, tmp_paths, loopdev):
    device = loopdev("xfs")
    plain = os.path.join(tmp_paths["root"], "plain")
    os.mkdir(plain, 0o700)
    storages = [
        {
            "name": "S",
            "root": os.path.join(tmp_paths["root"], "S"),
            "volumes": [
                {"name": "Plain", "type": "external", "mount_point": plain, "owner_qemu": True},
                {
                    "name": "Loop",
                    "type": "external",
                    "mount_point": os.path.join(tmp_paths["root"], "loop"),
                    "src": device,
                    "owner_qemu": True,
                    "require_mountpoint": True,
                },
            ],
        },
    ]
    extra = {"storage_registry": tmp_paths["registry"], "storage_fstab": tmp_paths["fstab"]}
    before = snapshot(tmp_paths)
    checked = run_playbook(_play(storages), extra_vars=extra, check=True, inventory=INVENTORY)
    assert checked.rc == 0, checked.stdout[-3000:]
    # The image storage reports its change; its volumes wait for it to exist (skipped).
    assert _recap(checked.stdout)["changed"] == 1
    assert "ok: [localhost] => (item=S/Plain)" not in checked.stdout, checked.stdout[-3000:]
    assert snapshot(tmp_paths) == before

    first = run_playbook(_play(storages), extra_vars=extra, inventory=INVENTORY)
    assert first.rc == 0, first.stdout[-3000:]
    assert _recap(first.stdout)["changed"] == 2
    assert mounts().get(os.path.join(tmp_paths["root"], "loop")) == "xfs"
    assert sorted(registry(tmp_paths)["image_storages"]["S"]["volumes"]) == ["Loop", "Plain"]

    again = run_playbook(_play(storages), extra_vars=extra, inventory=INVENTORY)
    assert again.rc == 0 and _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
    checked = run_playbook(_play(storages), extra_vars=extra, check=True, inventory=INVENTORY)
    assert checked.rc == 0 and _recap(checked.stdout)["changed"] == 0, checked.stdout[-3000:]
    assert "ok: [localhost] => (item=S/Plain)" in checked.stdout, checked.stdout[-3000:]

    storages[0]["state"] = "absent"
    gone = run_playbook(_play(storages), extra_vars=extra, inventory=INVENTORY)
    assert gone.rc == 0, gone.stdout[-3000:]
    assert os.path.join(tmp_paths["root"], "loop") not in mounts()
    assert registry(tmp_paths)["image_storages"] == {}
    again = run_playbook(_play(storages), extra_vars=extra, inventory=INVENTORY)
    assert again.rc == 0 and _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]


def test_role_rejects_unsupported_volume_type(run_playbook, tmp_paths):
    storages = [{"name": "S", "volumes": [{"name": "SAN1", "type": "nfs4", "mount_point": "/x"}]}]
    result = run_playbook(_play(storages), extra_vars={"storage_registry": tmp_paths["registry"]}, inventory=INVENTORY)
    assert result.rc != 0
    assert "value of type must be one of: external" in result.stdout, result.stdout[-2000:]
    assert snapshot(tmp_paths)["registry"] is None


def test_role_media_error_is_readable_and_password_hidden(run_playbook, tmp_paths):
    """A failing media storage shows the module's message; the password is in no output."""
    secret = "role-secret-Zq81"
    play = yaml.safe_load(_play([]))
    play[0]["vars"]["flexvdi_media_storages"] = [
        {"name": "iso", "server": "192.0.2.7", "share": "media", "username": "u", "password": secret, "vers": "1.0"}
    ]
    extra = {"storage_registry": tmp_paths["registry"], "storage_fstab": tmp_paths["fstab"]}
    before = snapshot(tmp_paths)
    result = run_playbook(yaml.safe_dump(play), extra_vars=extra, inventory=INVENTORY, verbosity=3)
    output = result.stdout + result.stderr
    assert result.rc != 0
    assert "vers 1.0 is SMB1, which is refused" in output, output[-3000:]
    assert "censored" not in output
    assert secret not in output
    assert snapshot(tmp_paths) == before


def test_getting_started(run_playbook, tmp_paths):
    """make demo's flow: image storage, external volume on /home/images, media storage cifs from this host."""
    created = not os.path.exists("/home/images")
    media_mount = "/var/lib/flexvdi/media/cifs"
    was_mounted = media_mount in mounts()
    extra = {"storage_registry": tmp_paths["registry"], "storage_fstab": tmp_paths["fstab"]}
    playbook = os.path.join(REPO, "playbooks", "getting_started.yml")
    try:
        first = run_playbook(playbook, extra_vars=extra, inventory=INVENTORY)
        assert first.rc == 0, first.stdout[-3000:]
        assert "Image storage MyImageStorage (hosts: localhost)" in first.stdout
        assert re.search(r"MyExternalVolume \[external\] /home/images: online, .* qemu-writable yes", first.stdout)
        assert "Media storage cifs (//127.0.0.1/media, local, hosts: localhost): online" in first.stdout
        assert registry(tmp_paths)["media_storages"]["cifs"]["transport"] == "local"
        again = run_playbook(playbook, extra_vars=extra, inventory=INVENTORY)
        assert again.rc == 0, again.stdout[-3000:]
        assert _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
    finally:
        if not was_mounted and media_mount in mounts():
            os.system("umount " + media_mount)
        if created:
            shutil.rmtree("/home/images", ignore_errors=True)
