"""The storage role and the getting started playbook, run by ansible-playbook on this host."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from _state import mounts, registry, snapshot

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(REPO, "inventories", "local", "hosts.yml")
GETTING_STARTED = os.path.join(REPO, "playbooks", "getting_started.yml")
SYSTEM_FILES = ("/etc/flexvdi/storage.json", "/etc/fstab")


def _recap(stdout, host="localhost"):
    found = re.search(re.escape(host) + r"\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout)
    assert found, stdout[-2000:]
    return {k: int(v) for k, v in zip(("ok", "changed", "unreachable", "failed"), found.groups())}


CONVERGE_TASK = "Converge the declared storage, one result per object"


def _objects(stdout, host="localhost"):
    """{"S" or "S/V": result} of the role's converge task for ``host`` (from a -v run's JSON result)."""
    task = stdout.index(CONVERGE_TASK)
    found = re.compile(r"^(ok|changed|fatal|failed): \[" + re.escape(host) + r"\].*?=> ", re.M).search(stdout, task)
    assert found, stdout[task : task + 3000]
    result, _end = json.JSONDecoder().raw_decode(stdout, found.end())
    return {
        (o["image_storage"] + "/" if o["kind"] in ("external", "ocfs2", "gluster") else "") + o["name"]: o
        for o in result["objects"]
    }


def _play(storages, hosts="vdi_hosts", media=None, module_defaults=None):
    play = {
        "name": "storage role",
        "hosts": hosts,
        "gather_facts": False,
        "vars": {"flexvdi_image_storages": storages},
        "roles": [{"role": "flexvdi.storage.storage"}],
    }
    if media is not None:
        play["vars"]["flexvdi_media_storages"] = media
    if module_defaults is not None:
        play["module_defaults"] = module_defaults
    return yaml.safe_dump([play])


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _failed_task(stdout):
    """The header of the task that failed first: the last TASK line before the first failure."""
    failure = re.search(r"^(fatal|failed): \[", stdout, re.M)
    assert failure, stdout[-3000:]
    fatal = failure.start()
    headers = re.findall(r"^TASK \[(.*?)\]", stdout[:fatal], re.M)
    assert headers, stdout[:fatal][-2000:]
    return headers[-1]


def test_role_check_real_again_then_absent(run_playbook, tmp_paths, loopdev):
    device = loopdev("xfs")
    plain = os.path.join(tmp_paths["root"], "plain")
    os.mkdir(plain, 0o700)
    storages = [
        {
            "name": "S",
            "hosts": ["localhost"],
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
    checked = run_playbook(_play(storages), extra_vars=extra, check=True, inventory=INVENTORY, verbosity=1)
    assert checked.rc == 0, checked.stdout[-3000:]
    # Check mode on a fresh host predicts every object: the volumes of the storage it would create too.
    predicted = _objects(checked.stdout)
    assert sorted(predicted) == ["S", "S/Loop", "S/Plain"] and all(o["changed"] for o in predicted.values())
    assert snapshot(tmp_paths) == before

    first = run_playbook(_play(storages), extra_vars=extra, inventory=INVENTORY, verbosity=1)
    assert first.rc == 0, first.stdout[-3000:]
    assert _recap(first.stdout)["changed"] == 1
    done = _objects(first.stdout)
    assert {k: (o["changed"], o["actions"]) for k, o in done.items()} == {
        k: (o["changed"], o["actions"]) for k, o in predicted.items()
    }, "check mode did not predict the run object by object"
    assert mounts().get(os.path.join(tmp_paths["root"], "loop")) == "xfs"
    assert sorted(registry(tmp_paths)["image_storages"]["S"]["volumes"]) == ["Loop", "Plain"]

    again = run_playbook(_play(storages), extra_vars=extra, inventory=INVENTORY)
    assert again.rc == 0 and _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
    checked = run_playbook(_play(storages), extra_vars=extra, check=True, inventory=INVENTORY, verbosity=1)
    assert checked.rc == 0 and _recap(checked.stdout)["changed"] == 0, checked.stdout[-3000:]
    assert _objects(checked.stdout)["S/Plain"]["volume"]["status"] == "online", "the volume was not checked"

    storages[0]["state"] = "absent"
    del storages[0]["hosts"]  # an absent storage needs no hosts: it is absent everywhere
    gone = run_playbook(_play(storages), extra_vars=extra, inventory=INVENTORY)
    assert gone.rc == 0, gone.stdout[-3000:]
    assert os.path.join(tmp_paths["root"], "loop") not in mounts()
    assert registry(tmp_paths)["image_storages"] == {}
    again = run_playbook(_play(storages), extra_vars=extra, inventory=INVENTORY)
    assert again.rc == 0 and _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]


def test_role_media_error_is_readable_and_password_hidden(run_playbook, tmp_paths):
    """A failing media storage shows the module's message; the password is in no output."""
    secret = "role-secret-Zq81"
    play = yaml.safe_load(_play([]))
    play[0]["vars"]["flexvdi_media_storages"] = [
        {
            "name": "iso",
            "server": "192.0.2.7",
            "share": "media",
            "username": "u",
            "password": secret,
            "vers": "1.0",
            "hosts": ["localhost"],
        }
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


def _smbd_pids():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
                stat = handle.read()
            # "pid (comm) state ...": a zombie (state Z) is gone already, whoever reaps it
            if stat[stat.index("(") + 1 : stat.rindex(")")] == "smbd" and stat[stat.rindex(")") + 2] != "Z":
                found.append(int(pid))
        except OSError:
            pass
    return found


def _stop_smbd_we_started():
    """The flow starts this host's smbd (the media_server role; `service smbd start`, which is
    `smbd -D` here, without systemd). A test leaves no daemon behind: stop it, then make sure."""
    subprocess.run(["service", "smbd", "stop"], capture_output=True, check=False, timeout=60)
    deadline = time.monotonic() + 10
    while _smbd_pids() and time.monotonic() < deadline:
        for pid in _smbd_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        time.sleep(0.5)
    assert not _smbd_pids(), f"smbd still running after the test: {_smbd_pids()}"


def test_getting_started(run_playbook, tmp_paths):
    """make demo's flow: image storage, external volume on /home/images, media storage cifs from this host."""
    created = not os.path.exists("/home/images")
    media_mount = "/var/lib/flexvdi/media/cifs"
    was_mounted = media_mount in mounts()
    smbd_was_running = bool(_smbd_pids())
    extra = {"storage_registry": tmp_paths["registry"], "storage_fstab": tmp_paths["fstab"]}
    playbook = GETTING_STARTED
    try:
        first = run_playbook(playbook, extra_vars=extra, inventory=INVENTORY)
        assert first.rc == 0, first.stdout[-3000:]
        assert "Image storage MyImageStorage (hosts: localhost)" in first.stdout
        assert re.search(r"MyExternalVolume \[external\] /home/images: online, .* qemu-writable yes", first.stdout)
        assert "Media storage cifs (//127.0.0.1/media, local, hosts: localhost): online" in first.stdout
        assert registry(tmp_paths)["media_storages"]["cifs"]["transport"] == "local"
        # The share is this host's alone: its media storage cifs is local (bind-mounted), no warning.
        assert "WARNING: share [media]" not in first.stdout
        assert re.search(r"^\s*hosts allow = 127\.0\.0\.1 ::1$", Path("/etc/samba/smb.conf").read_text(), re.M)
        again = run_playbook(playbook, extra_vars=extra, inventory=INVENTORY)
        assert again.rc == 0, again.stdout[-3000:]
        assert _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
    finally:
        if not was_mounted and media_mount in mounts():
            os.system("umount " + media_mount)
        if created:
            shutil.rmtree("/home/images", ignore_errors=True)
        if not smbd_was_running:
            _stop_smbd_we_started()


# --- the host set is the declaration's -------------------------------------------------------


def _two_hosts(tmp_paths):
    """node1 and node2 in vdi_hosts: both this machine (connection local), each with its own
    registry and fstab (host vars storage_registry, storage_fstab), so they act as two hosts."""
    base = os.path.dirname(os.path.dirname(tmp_paths["registry"]))
    paths, hostvars = {}, {}
    for node in ("node1", "node2"):
        etc = os.path.join(base, node)
        os.mkdir(etc, 0o755)
        fstab = os.path.join(etc, "fstab")
        shutil.copyfile(tmp_paths["fstab"], fstab)
        paths[node] = {"registry": os.path.join(etc, "storage.json"), "fstab": fstab, "root": tmp_paths["root"]}
        hostvars[node] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "storage_registry": paths[node]["registry"],
            "storage_fstab": fstab,
        }
    inventory = os.path.join(base, "two-hosts.yml")
    with open(inventory, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"all": {"children": {"vdi_hosts": {"hosts": hostvars}}}}, handle)
    return paths, inventory


def _getting_started_vars():
    """getting_started.yml's play vars, with its own expression for the image storage's hosts."""
    with open(GETTING_STARTED, encoding="utf-8") as handle:
        play_vars = dict(yaml.safe_load(handle)[0]["vars"])
    hosts = play_vars["flexvdi_image_storages"][0]["hosts"]
    play_vars["flexvdi_media_storages"] = []
    return play_vars, hosts


@pytest.mark.parametrize("declared", ["listed", "getting_started"])
def test_limit_does_not_shrink_an_image_storage(run_playbook, tmp_paths, loopdev, declared):
    """A storage of node1 and node2 with an ext4 block device: refused under a limit to either host.

    `vdi_hosts:&node1` is the play `--limit node1` makes of `hosts: vdi_hosts` (run_playbook has
    no limit option). `listed` writes the hosts out; `getting_started` uses the playbook's own
    expression for them, which must come from the inventory, not from the hosts of the run.
    """
    device = loopdev("ext4")
    paths, inventory = _two_hosts(tmp_paths)
    play_vars, hosts = ({}, ["node1", "node2"]) if declared == "listed" else _getting_started_vars()
    mount_point = os.path.join(tmp_paths["root"], "ext4")
    storages = [
        {
            "name": "S",
            "hosts": hosts,
            "root": os.path.join(tmp_paths["root"], "S"),
            "volumes": [{"name": "V", "type": "external", "mount_point": mount_point, "src": device}],
        }
    ]
    fstabs = {node: _read(p["fstab"]) for node, p in paths.items()}
    for node in ("node1", "node2"):
        play = yaml.safe_load(_play(storages, hosts=f"vdi_hosts:&{node}"))
        play[0]["vars"] = {**play_vars, **play[0]["vars"]}
        result = run_playbook(yaml.safe_dump(play), inventory=inventory)
        output = result.stdout + result.stderr
        assert result.rc != 0, output[-3000:]
        assert re.search(rf"src {device}\b[^:]*\bext4, which is not a cluster filesystem", output), output[-3000:]
        assert "image storage S has 2 hosts (node1, node2)" in output, output[-3000:]
        assert _recap(result.stdout, node)["failed"] == 1
        assert mount_point not in mounts()
        for other, other_paths in paths.items():
            assert _read(other_paths["fstab"]) == fstabs[other], f"{other}'s fstab changed under the limit to {node}"
            if os.path.exists(other_paths["registry"]):
                assert registry(other_paths)["image_storages"]["S"]["volumes"] == {}, f"{other} registered the volume"
    assert os.path.exists(paths["node1"]["registry"]) and os.path.exists(paths["node2"]["registry"])


def test_a_slice_of_the_inventory_never_shrinks_a_registered_storage(run_playbook, tmp_paths):
    """AWX job slicing: each slice's inventory holds part of the hosts, so `groups['vdi_hosts']`
    is the slice. A storage registered with node1 and node2, converged by a slice of node1 alone,
    is refused on node1 (node2 is not in that inventory), naming Job Slicing; nothing changes.
    With node2 in the inventory, dropping it from the declaration is a deliberate change."""
    paths, inventory = _two_hosts(tmp_paths)
    storages = [{"name": "S", "hosts": "{{ groups['vdi_hosts'] }}", "root": os.path.join(tmp_paths["root"], "S")}]
    first = run_playbook(_play(storages), inventory=inventory)
    assert first.rc == 0, (first.stdout + first.stderr)[-3000:]
    assert registry(paths["node1"])["image_storages"]["S"]["hosts"] == ["node1", "node2"]

    with open(inventory, encoding="utf-8") as handle:
        whole = yaml.safe_load(handle)
    node1 = {"node1": whole["all"]["children"]["vdi_hosts"]["hosts"]["node1"]}
    sliced = os.path.join(os.path.dirname(inventory), "slice-1-of-2.yml")
    with open(sliced, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"all": {"children": {"vdi_hosts": {"hosts": node1}}}}, handle)
    before = _read(paths["node1"]["registry"])
    for check in (True, False):
        result = run_playbook(_play(storages), inventory=sliced, check=check)
        output = result.stdout + result.stderr
        assert result.rc != 0, output[-3000:]
        assert "this run declares node1 and its inventory does not have node2" in output, output[-3000:]
        assert "Job Slicing 1" in output, output[-3000:]
        assert _read(paths["node1"]["registry"]) == before

    # node2 in the inventory, left out of the storage on purpose: the storage shrinks.
    storages[0]["hosts"] = ["node1"]
    shrink = run_playbook(_play(storages), inventory=inventory)
    assert shrink.rc == 0, (shrink.stdout + shrink.stderr)[-3000:]
    assert registry(paths["node1"])["image_storages"]["S"]["hosts"] == ["node1"]


def test_a_slice_of_a_sliced_awx_job_refuses_before_a_storage_exists(run_playbook, tmp_paths):
    """A fresh storage, hosts from groups[...], run as AWX runs a slice: a job launched by the
    workflow job that AWX makes from the sliced template (same name). Nothing tells the slice's
    groups from a smaller cluster, so the extra vars AWX gives every job decide: refused on every
    host, naming Job Slicing, nothing written. A workflow of another name runs."""
    paths, inventory = _two_hosts(tmp_paths)
    storages = [{"name": "S", "hosts": "{{ groups['vdi_hosts'] }}", "root": os.path.join(tmp_paths["root"], "S")}]
    awx = {
        "awx_job_id": 42,
        "awx_job_launch_type": "workflow",
        "awx_job_template_name": "flexvdi storage",
        "awx_workflow_job_id": 41,
        "awx_workflow_job_name": "flexvdi storage",
    }
    result = run_playbook(_play(storages), inventory=inventory, extra_vars=awx)
    output = result.stdout + result.stderr
    assert result.rc != 0, output[-3000:]
    assert output.count("looks like one slice of an AWX job template with Job Slicing above 1") >= 2, output[-3000:]
    assert "set the job template's Job Slicing to 1" in output, output[-3000:]
    for node in ("node1", "node2"):
        assert not os.path.exists(paths[node]["registry"]), f"{node} registered a storage in a slice"

    workflow = run_playbook(
        _play(storages), inventory=inventory, extra_vars={**awx, "awx_workflow_job_name": "nightly"}
    )
    assert workflow.rc == 0, (workflow.stdout + workflow.stderr)[-3000:]
    assert registry(paths["node1"])["image_storages"]["S"]["hosts"] == ["node1", "node2"]


# --- defaults reach the role -----------------------------------------------------------------


class _SystemFilesKept:
    """Reads the host's own registry and fstab before; puts them back after if a run wrote them.

    The role must not touch them here; should it (the bug this guards against), the test fails
    and the host is left as it was.
    """

    def __enter__(self):
        self.flexvdi_dir = os.path.isdir("/etc/flexvdi")
        self.before = {path: _read(path) for path in SYSTEM_FILES}
        return self.before

    def __exit__(self, *exc):
        for path, content in self.before.items():
            if _read(path) == content:
                continue
            if content is None:
                os.remove(path)
            else:
                with open(path, "wb") as handle:
                    handle.write(content)
        if not self.flexvdi_dir and os.path.isdir("/etc/flexvdi"):
            shutil.rmtree("/etc/flexvdi")
        return False


@pytest.mark.parametrize("where", ["group", "per_module"])
def test_role_honours_the_plays_module_defaults(run_playbook, tmp_paths, loopdev, where):
    """No storage_registry nor storage_fstab: the play's module_defaults say where, not the role.

    `group`: registry and fstab for group/flexvdi.storage.all, as the README documents (every
    module of the group takes both). `per_module`: registry for the group, fstab per module.
    Check mode, where the role reads the registry with storage_info, runs in both.
    """
    device = loopdev("ext4")
    mount_point = os.path.join(tmp_paths["root"], "loop")
    storages = [
        {
            "name": "S",
            "hosts": ["localhost"],
            "root": os.path.join(tmp_paths["root"], "S"),
            "volumes": [{"name": "Loop", "type": "external", "mount_point": mount_point, "src": device}],
        }
    ]
    if where == "group":
        defaults = {"group/flexvdi.storage.all": {"registry": tmp_paths["registry"], "fstab": tmp_paths["fstab"]}}
    else:
        fstab = {"fstab": tmp_paths["fstab"]}
        defaults = {
            "group/flexvdi.storage.all": {"registry": tmp_paths["registry"]},
            "flexvdi.storage.image_storage": fstab,
            "flexvdi.storage.external_volume": fstab,
        }
    playbook = _play(storages, module_defaults=defaults)
    with _SystemFilesKept() as system:
        before = snapshot(tmp_paths)
        checked = run_playbook(playbook, check=True, inventory=INVENTORY)
        assert checked.rc == 0, checked.stdout[-3000:]
        assert snapshot(tmp_paths) == before

        first = run_playbook(playbook, inventory=INVENTORY)
        assert first.rc == 0, first.stdout[-3000:]
        assert {path: _read(path) for path in SYSTEM_FILES} == system, "the role wrote the host's registry or fstab"
        assert list(registry(tmp_paths)["image_storages"]["S"]["volumes"]) == ["Loop"]
        assert mounts().get(mount_point) == "ext4"
        entries = [line.split() for line in _read(tmp_paths["fstab"]).decode().splitlines()]
        assert [device, mount_point, "ext4"] in [fields[:3] for fields in entries]

        again = run_playbook(playbook, inventory=INVENTORY)
        assert again.rc == 0 and _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
        checked = run_playbook(playbook, check=True, inventory=INVENTORY, verbosity=1)
        assert checked.rc == 0 and _recap(checked.stdout)["changed"] == 0, checked.stdout[-3000:]
        assert _objects(checked.stdout)["S/Loop"]["volume"]["status"] == "online", "the volume was not checked"
        assert {path: _read(path) for path in SYSTEM_FILES} == system, "the role wrote the host's registry or fstab"


# --- role input errors are the role's --------------------------------------------------------

_MEDIA = {"name": "iso", "server": "192.0.2.7", "share": "media", "username": "u", "password": "role-argspec-Qx7"}


def _without(item, key):
    return {k: v for k, v in item.items() if k != key}


BAD_DECLARATIONS = {
    "volume_without_mount_point": (
        [{"name": "S", "hosts": ["localhost"], "volumes": [{"name": "V", "type": "external"}]}],
        None,
        "type is external but all of the following are missing: mount_point found in flexvdi_image_storages -> volumes",
    ),
    "unknown_volume_type": (
        [{"name": "S", "hosts": ["localhost"], "volumes": [{"name": "V", "type": "nfs4", "mount_point": "/x"}]}],
        None,
        "value of type must be one of: external, ocfs2, gluster, got: nfs4 found in flexvdi_image_storages -> volumes",
    ),
    "ocfs2_volume_without_device": (
        [{"name": "S", "hosts": ["localhost"], "volumes": [{"name": "V", "type": "ocfs2"}]}],
        None,
        "type is ocfs2 but all of the following are missing: device found in flexvdi_image_storages -> volumes",
    ),
    "image_storage_without_hosts": (
        [{"name": "S", "volumes": [{"name": "V", "type": "external", "mount_point": "/x"}]}],
        None,
        "state is present but all of the following are missing: hosts found in flexvdi_image_storages",
    ),
    "media_storage_without_server": (
        [],
        [{**_without(_MEDIA, "server"), "hosts": ["localhost"]}],
        "state is present but all of the following are missing: server found in flexvdi_media_storages",
    ),
    "media_storage_without_hosts": (
        [],
        [_MEDIA],
        "state is present but all of the following are missing: hosts found in flexvdi_media_storages",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DECLARATIONS))
def test_role_input_errors_fail_in_the_argument_spec(run_playbook, tmp_paths, case):
    """A bad declaration fails the role's argument validation, naming the option; nothing runs."""
    storages, media, message = BAD_DECLARATIONS[case]
    extra = {"storage_registry": tmp_paths["registry"], "storage_fstab": tmp_paths["fstab"]}
    before = snapshot(tmp_paths)
    result = run_playbook(_play(storages, media=media), extra_vars=extra, inventory=INVENTORY)
    output = result.stdout + result.stderr
    assert result.rc != 0, output[-3000:]
    assert re.search(r"Validating arguments against arg spec '?main'?", _failed_task(result.stdout)), output[-3000:]
    assert "Validation of arguments failed" in output, output[-3000:]
    assert message in output, output[-3000:]
    assert "undefined" not in output.lower(), output[-3000:]
    assert _MEDIA["password"] not in output
    assert snapshot(tmp_paths) == before
    assert before["registry"] is None


# --- an OS the roles do not support ----------------------------------------------------------

ROCKY_OS_RELEASE = (
    'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nPRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"\n'
)


@pytest.mark.parametrize("role", ["cifs_client", "media_server"])
def test_roles_stop_on_an_os_they_do_not_support(run_playbook, role):
    """On a host whose /etc/os-release is Rocky Linux's, the role stops before apt, naming the OS and the way out."""
    play = f"- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: flexvdi.storage.{role}\n"
    result = run_playbook(
        play, extra_vars={"media_server_password": "not-used-8f2c"}, replace_files={"/etc/os-release": ROCKY_OS_RELEASE}
    )
    output = result.stdout + result.stderr
    assert result.rc != 0, output[-3000:]
    assert f"localhost runs Rocky Linux 9.4 (Blue Onyx): the {role} role installs" in output, output[-3000:]
    assert f"set {role}_packages to []; nothing was changed" in output
    assert _failed_task(result.stdout).endswith("Require a Debian-family OS"), result.stdout[-3000:]
    assert _recap(result.stdout)["changed"] == 0
