"""direct_storage for real on this host: loop devices, a running systemd-udevd, the qemu user.

A loop device has no WWN and no serial number; the module keys its udev rule on the loop's
backing file instead (documented in the module), and the test gives the loop a by-id name
(the by_id fixture), as a real disk has from udev. Where this host runs no udev (containers),
the udev fixture runs systemd-udevd in a private mount namespace with only the test's rules,
and the modules run in that namespace; the device's owner and mode are the machine's, so the
qemu user's access is checked from the test itself, as that user, outside the module.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import struct
import subprocess
from pathlib import Path

import pytest
import yaml
from _state import registry, snapshot

DS = "flexvdi.storage.direct_storage"
IS = "flexvdi.storage.image_storage"
EV = "flexvdi.storage.external_volume"
INFO = "flexvdi.storage.storage_info"


@pytest.fixture
def direct(run_module, tmp_paths, udev):
    """run(args, check=False, diff=False) for direct_storage and storage_info, in udev's namespace."""

    def _run(name, args, check=False, diff=False):
        common = {"registry": tmp_paths.registry}
        if name == DS:
            common["udev_rules_dir"] = udev.rules_dir
        return run_module(name, dict(common, **args), check=check, diff=diff, namespace=udev.namespace)

    return _run


def _rules(udev, name):
    return os.path.join(udev.rules_dir, f"90-flexvdi-direct-{name}.rules")


def _unique():
    return "d" + secrets.token_hex(4)


def _qemu_can_open(user, device):
    """Whether ``user`` opens ``device`` read-write: asked of the kernel, as that user, by runuser."""
    proc = subprocess.run(
        ["runuser", "-u", user, "--", "sh", "-c", 'exec 3<>"$1"', "sh", device], capture_output=True, check=False
    )
    return proc.returncode == 0


def _state(udev, tmp_paths, name):
    rule = _rules(udev, name)
    return {
        "snapshot": snapshot(tmp_paths),
        "rule": Path(rule).read_text() if os.path.exists(rule) else None,
    }


def test_whole_disk_given_to_qemu_and_removed_with_data_kept(direct, tmp_paths, udev, loopdev, by_id, qemu_user):
    device = loopdev("none", 64)
    link = by_id(device)
    marker = secrets.token_bytes(4096)
    with open(device, "r+b") as handle:
        handle.seek(1 << 20)
        handle.write(marker)
    name = _unique()
    args = {"name": name, "device": link}
    rule = _rules(udev, name)
    assert not _qemu_can_open(qemu_user, device), "a fresh loop device must not be the qemu user's already"

    before = _state(udev, tmp_paths, name)
    checked = direct(DS, args, check=True, diff=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] and checked["actions"]
    assert _state(udev, tmp_paths, name) == before, "check mode wrote something"

    real = direct(DS, args, diff=True)
    assert not real.get("failed"), real.get("msg")
    assert real["changed"]
    assert real["actions"] == checked["actions"]
    text = Path(rule).read_text()
    backing = Path(f"/sys/block/{os.path.basename(device)}/loop/backing_file").read_text().strip()
    assert f'ATTR{{loop/backing_file}}=="{backing}"' in text
    assert f'OWNER="{qemu_user}"' in text and 'ENV{DEVTYPE}=="disk"' in text
    assert any(d["after_header"] == rule and d["after"] == text for d in real["diff"]), "the diff shows the rule"
    assert _qemu_can_open(qemu_user, device), "the qemu user cannot open the disk after the module said it can"
    assert os.stat(device).st_uid == pwd.getpwnam(qemu_user).pw_uid
    record = registry(tmp_paths)["direct_storages"][name]
    assert (record["device"], record["host"], record["rule"]) == (link, "localhost", rule)
    status = real["direct_storage"]
    assert (status["status"], status["qemu_access"], status["kernel_name"]) == ("online", True, device)
    assert status["size"] == 64 * 2**20

    again = direct(DS, args)
    assert not again.get("failed"), again.get("msg")
    assert (again["changed"], again["actions"]) == (False, [])

    info = direct(INFO, {})
    (listed,) = [d for d in info["direct_storages"] if d["name"] == name]
    assert (listed["device"], listed["kernel_name"], listed["size"]) == (link, device, 64 * 2**20)
    assert (listed["status"], listed["qemu_access"], listed["rule_present"]) == ("online", True, True)
    assert {"model", "serial"} <= set(listed)

    absent = {"name": name, "state": "absent"}
    before = _state(udev, tmp_paths, name)
    checked = direct(DS, absent, check=True)
    assert checked["changed"] and _state(udev, tmp_paths, name) == before
    removed = direct(DS, absent, diff=True)
    assert not removed.get("failed"), removed.get("msg")
    assert removed["changed"] and removed["actions"] == checked["actions"]
    assert not os.path.exists(rule)
    assert name not in registry(tmp_paths)["direct_storages"]
    assert not _qemu_can_open(qemu_user, device), "the qemu user keeps the disk after absent"
    with open(device, "rb") as handle:
        handle.seek(1 << 20)
        assert handle.read(4096) == marker, "absent touched the disk's data"
    assert direct(DS, absent)["changed"] is False


def _mbr(device):
    """One partition in a DOS partition table, and the kernel told about it (partx)."""
    entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 8192)
    with open(device, "r+b") as handle:
        handle.seek(446)
        handle.write(entry + b"\0" * 48 + b"\x55\xaa")
    subprocess.run(["partx", "-a", device], check=True, capture_output=True)


def _in_namespace(udev, cmd):
    """``cmd`` run where the modules run: udev's mount namespace when the fixture made one."""
    return ["nsenter", f"--target={udev.namespace}", "--mount", "--", *cmd] if udev.namespace else cmd


def _prepare(kind, device, run_module, tmp_paths, link, udev):
    if kind == "mounted":
        mount_point = os.path.join(tmp_paths.root, "mnt")
        os.mkdir(mount_point)
        subprocess.run(_in_namespace(udev, ["mount", device, mount_point]), check=True)
    elif kind == "partitioned":
        _mbr(device)
    elif kind == "lvm":
        subprocess.run(["pvcreate", "-q", "-y", device], check=True, capture_output=True)
    elif kind == "swap":
        subprocess.run(["mkswap", "-q", device], check=True, capture_output=True)
        subprocess.run(["swapon", device], check=True, capture_output=True)
    elif kind == "volume":
        common = {"registry": tmp_paths.registry, "fstab": tmp_paths.fstab}
        result = run_module(IS, dict(common, name="S", root=os.path.join(tmp_paths.root, "S")))
        assert not result.get("failed"), result.get("msg")
        mount_point = os.path.join(tmp_paths.root, "S", "V")
        volume = dict(common, image_storage="S", name="V", mount_point=mount_point, src=link, fstype="ext4")
        result = run_module(EV, volume)
        assert not result.get("failed"), result.get("msg")


@pytest.mark.parametrize(
    ("kind", "fstype", "message", "force_helps"),
    [
        ("formatted", "ext4", "carries ext4", True),
        ("partitioned", "none", "holds partitions", True),
        ("lvm", "none", "is an LVM physical volume", True),
        ("mounted", "ext4", "is mounted at", False),
        ("swap", "none", "is active swap", False),
        ("volume", "ext4", "is the device of volume V of image storage S", False),
    ],
)
def test_refusals_write_nothing(
    direct, run_module, tmp_paths, udev, loopdev, by_id, qemu_user, kind, fstype, message, force_helps
):
    device = loopdev(fstype, 64)
    link = by_id(device)
    _prepare(kind, device, run_module, tmp_paths, link, udev)
    name = _unique()
    try:
        for force in (False, True):
            if force and force_helps:
                continue
            before = _state(udev, tmp_paths, name)
            result = direct(DS, {"name": name, "device": link, "force": force})
            assert result.get("failed"), f"{kind}: expected a refusal, got {result}"
            assert message in result["msg"] and "Nothing was written" in result["msg"], result["msg"]
            assert not result["changed"]
            assert _state(udev, tmp_paths, name) == before, f"{kind}: the refusal wrote something"
            assert not _qemu_can_open(qemu_user, device)
        if force_helps:
            forced = direct(DS, {"name": name, "device": link, "force": True})
            assert not forced.get("failed"), forced.get("msg")
            assert _qemu_can_open(qemu_user, device)
            assert direct(DS, {"name": name, "state": "absent"})["changed"]
    finally:
        if kind == "mounted":
            subprocess.run(_in_namespace(udev, ["umount", device]), check=False, capture_output=True)
        if kind == "swap":
            subprocess.run(["swapoff", device], check=False, capture_output=True)
        if kind == "lvm":
            subprocess.run(["pvremove", "-q", "-y", device], check=False, capture_output=True)
        if kind == "partitioned":
            subprocess.run(["partx", "-d", device], check=False, capture_output=True)


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("/dev/loop0", "is not a name in /dev/disk/by-id"),
        ("/dev/disk/by-id/flexvdi-test-missing", "is missing on host localhost"),
    ],
)
def test_bad_device_is_named(direct, tmp_paths, udev, device, message):
    name = _unique()
    before = _state(udev, tmp_paths, name)
    result = direct(DS, {"name": name, "device": device})
    assert result.get("failed") and message in result["msg"], result
    assert "fix device" in result["msg"]
    assert _state(udev, tmp_paths, name) == before


def test_partition_is_refused(direct, tmp_paths, udev, loopdev, by_id):
    device = loopdev("none", 64)
    _mbr(device)
    try:
        link = by_id(device + "p1")
        name = _unique()
        before = _state(udev, tmp_paths, name)
        result = direct(DS, {"name": name, "device": link, "force": True})
        assert result.get("failed") and "is a partition, not a whole disk" in result["msg"], result
        assert _state(udev, tmp_paths, name) == before
    finally:
        subprocess.run(["partx", "-d", device], check=False, capture_output=True)


def _recap(stdout):
    found = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout)
    assert found, stdout[-2000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, found.groups())))


def test_role_converges_direct_storages(run_playbook, tmp_paths, udev, loopdev, by_id, qemu_user):
    """flexvdi_direct_storages through the storage role, with the modules' own rules directory."""
    device = loopdev("none", 64)
    name = _unique()
    storages = [{"name": name, "host": "localhost", "device": by_id(device)}]

    def play(state="present"):
        item = dict(storages[0], state=state)
        return yaml.safe_dump(
            [
                {
                    "name": "direct storages",
                    "hosts": "vdi_hosts",
                    "gather_facts": False,
                    "vars": {"flexvdi_direct_storages": [item], "storage_registry": tmp_paths.registry},
                    "roles": [{"role": "flexvdi.storage.storage"}],
                }
            ]
        )

    inventory = "inventories/local/hosts.yml"
    try:
        _role_three_runs(run_playbook, play, inventory, udev, name, device, qemu_user, tmp_paths)
    finally:  # with the host's own udev, the rule is in /etc/udev/rules.d: never leave it there
        Path(_rules(udev, name)).unlink(missing_ok=True)


def _role_three_runs(run_playbook, play, inventory, udev, name, device, qemu_user, tmp_paths):
    first = run_playbook(play(), inventory=inventory, namespace=udev.namespace)
    assert first.rc == 0 and _recap(first.stdout)["changed"] == 1, first.stdout[-3000:]
    # In udev's namespace /etc/udev/rules.d is the test's directory: the default path was used.
    assert os.path.exists(_rules(udev, name)) and _qemu_can_open(qemu_user, device)
    again = run_playbook(play(), inventory=inventory, namespace=udev.namespace)
    assert again.rc == 0 and _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
    gone = run_playbook(play("absent"), inventory=inventory, namespace=udev.namespace)
    assert gone.rc == 0 and _recap(gone.stdout)["changed"] == 1, gone.stdout[-3000:]
    assert not os.path.exists(_rules(udev, name)) and not _qemu_can_open(qemu_user, device)
    assert name not in registry(tmp_paths)["direct_storages"]


def test_without_udev_nothing_is_written(run_module, tmp_paths, udev, loopdev, by_id):
    """Outside udev's namespace no systemd-udevd answers: the module says so and writes nothing."""
    if udev.namespace is not None:
        name = _unique()
        args = {"name": name, "device": by_id(loopdev("none", 64)), "registry": tmp_paths.registry}
        before = _state(udev, tmp_paths, name)
        result = run_module(DS, dict(args, udev_rules_dir=udev.rules_dir))  # not in udev's namespace
        assert result.get("failed") and "udev is not running on host localhost" in result["msg"], result
        assert "start systemd-udevd. Nothing was written" in result["msg"]
        assert _state(udev, tmp_paths, name) == before
    else:
        pytest.skip("this host runs systemd-udevd for real: a host without it cannot be shown here")


def test_a_volume_never_mounts_a_direct_storage(direct, run_module, tmp_paths, udev, loopdev, by_id):
    device = loopdev("ext4", 64)
    link = by_id(device)
    name = _unique()
    given = direct(DS, {"name": name, "device": link, "force": True})
    assert not given.get("failed"), given.get("msg")
    common = {"registry": tmp_paths.registry, "fstab": tmp_paths.fstab}
    assert not run_module(IS, dict(common, name="S", root=os.path.join(tmp_paths.root, "S"))).get("failed")
    mount_point = os.path.join(tmp_paths.root, "S", "V")
    volume = dict(common, image_storage="S", name="V", mount_point=mount_point, src=link, fstype="ext4")
    before = snapshot(tmp_paths)
    refused = run_module(EV, volume)
    assert refused.get("failed") and f"is the disk of direct storage {name}, given to guests" in refused["msg"], refused
    assert snapshot(tmp_paths) == before
    removed = direct(DS, {"name": name, "state": "absent"})
    assert removed["changed"] and not removed.get("failed"), removed
