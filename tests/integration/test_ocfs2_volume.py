"""ocfs2_volume for real on this host: loop devices named in /dev/disk/by-id, ocfs2-tools in userspace.

This kernel has no OCFS2, so nothing is ever mounted here: what is proven is everything up to
the mount (identity, refusals with nothing written, the planned format in check mode, the
arguments mkfs.ocfs2 accepts, adoption of a volume that carries our label up to the mount
failing and being undone, status and removal through the volume type table). Formatting with
o2cb and mounting on two hosts are proven by the lab (tests/lab).

Two hosts are this machine twice (the local connection); node2's Python runs in a private
mount namespace whose /dev/disk/by-id is a directory of the test's, so node2 can see another
disk, or none, under the same name.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys

import pytest
from _state import fails_cleanly, registry, snapshot

from ansible_collections.flexvdi.storage.plugins.module_utils._ocfs2 import (
    mkfs_argv,
    read_superblock,
    restore_regions,
    save_regions,
)

OV = "flexvdi.storage.ocfs2_volume"
IS = "flexvdi.storage.image_storage"
INFO = "flexvdi.storage.storage_info"
BY_ID = "/dev/disk/by-id"
BIG_MB = 2200  # mkfs.ocfs2 -T vmstore wants at least 2 GiB (sparse: nothing is written)


def _kernel_has_ocfs2():
    with open("/proc/filesystems", encoding="utf-8") as handle:
        return any(line.split()[-1] == "ocfs2" for line in handle if line.strip())


def _blkid(device):
    proc = subprocess.run(["blkid", "-p", "-o", "export", device], capture_output=True, text=True, check=False)
    return {} if proc.returncode == 2 else dict(line.split("=", 1) for line in proc.stdout.split())


def _mkfs_local(device, label="S.V", slots=2):
    subprocess.run(["mkfs.ocfs2", "-q", "-M", "local", "-N", str(slots), "-L", label, device], check=True)


_SEEN_ONLINE = """\
mount -t tmpfs -o mode=0755 tmpfs /sys/kernel && mkdir -p /sys/kernel/config/cluster/flexvdi || exit 125
if [ -n "$1" ]; then mount --bind "$1" /usr/sbin/mkfs.ocfs2 || exit 125; fi
echo ready
exec sleep 3600
"""

# mkfs.ocfs2 as it fails after writing (issue 17): a whole OCFS2 format labelled S.V, what blkid
# then reads recorded, and exit 1. Its dry run is the real one's.
_WRITES_THEN_FAILS = """\
#!/bin/sh
real={real}
for last; do :; done
case " $* " in *" --dry-run "*) exec "$real" "$@" ;; esac
"$real" -q -x -M local -N 2 -L S.V -- "$last" >/dev/null 2>&1 </dev/null || exit 2
blkid -p -o export "$last" >{written}
echo "mkfs.ocfs2: Unable to access cluster service while initializing the cluster" >&2
exit 1
"""


@pytest.fixture
def o2cb_seen_online(tmp_path):
    """o2cb_seen_online(mkfs="real") -> the pid of a process whose mount namespace (pass it to
    run_module or run_playbook as ``namespace``) shows the o2cb cluster flexvdi online: a tmpfs
    on /sys/kernel holding config/cluster/flexvdi, which is what the module reads. The o2cb
    kernel side stays absent, so a real mkfs.ocfs2 still cannot reach the cluster.

    mkfs="writes then fails": mkfs.ocfs2 there is _WRITES_THEN_FAILS; what blkid read on the
    device after its format is left in ``tmp_path / "written"``. Nothing leaks out of the
    namespace; the process is stopped at teardown.
    """
    started = []

    def _seen_online(mkfs="real"):
        stand_in = ""
        if mkfs == "writes then fails":
            real = tmp_path / "mkfs.ocfs2.real"
            shutil.copy2("/usr/sbin/mkfs.ocfs2", real)
            script = tmp_path / "mkfs.ocfs2"
            script.write_text(_WRITES_THEN_FAILS.format(real=real, written=tmp_path / "written"))
            script.chmod(0o755)
            stand_in = str(script)
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "slave", "--", "/bin/sh", "-c", _SEEN_ONLINE, "seen", stand_in],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        if proc.stdout.readline().strip() != "ready":
            pytest.fail(f"o2cb_seen_online: the namespace did not start (rc={proc.wait()})", pytrace=False)
        return proc.pid

    yield _seen_online
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def storage(run_module, tmp_paths):
    """Image storage S (hosts: localhost) registered here; returns the common module arguments."""
    common = {"registry": tmp_paths["registry"], "fstab": tmp_paths["fstab"]}
    result = run_module(IS, dict(common, name="S", root=os.path.join(tmp_paths["root"], "S")))
    assert result["changed"] and not result.get("failed"), result
    return dict(common, image_storage="S", name="V")


def _volume_args(storage, device, **extra):
    return dict(storage, device=device, **extra)


# --- identity ---------------------------------------------------------------------------------


def test_identify_reports_what_this_host_sees_and_changes_nothing(run_module, tmp_paths, storage, loopdev, by_id):
    device = loopdev("none")
    name = by_id(device)
    before = snapshot(tmp_paths)
    result = run_module(OV, _volume_args(storage, name, identify=True), check=True)
    assert not result.get("failed"), result.get("msg")
    real = run_module(OV, _volume_args(storage, name, identify=True))
    assert snapshot(tmp_paths) == before
    assert (result["changed"], real["changed"]) == (False, False)
    identity = real["identity"]
    assert identity == result["identity"], "check mode reports the same"
    assert identity["present"] and identity["block"]
    assert identity["kernel_name"] == device
    assert name in identity["by_id"]
    assert identity["size"] == 300 * 2**20
    assert identity["signature"] == {}
    assert (identity["host"], identity["hosts"], identity["label"]) == ("localhost", ["localhost"], "S.V")

    missing = run_module(OV, _volume_args(storage, BY_ID + "/flexvdi-test-missing", identify=True))
    assert not missing.get("failed"), "identify reports a missing disk, for the controller to name it"
    assert (missing["identity"]["present"], missing["identity"]["kernel_name"]) == (False, None)


# --- refusals: nothing formatted, nothing mounted, registry and fstab as before -----------------


@pytest.mark.parametrize(
    ("prepare", "extra", "message"),
    [
        ("ext4", {}, "carries ext4"),
        ("other-label", {}, "carries ocfs2 labelled other"),
        ("none", {"cluster_name": "flex-vdi"}, "cluster_name 'flex-vdi' is not an o2cb cluster name"),
        ("none", {"label": "x" * 64}, "at most 63 characters"),
        ("none", {"mount_point": "/var"}, "mount_point /var is a directory of the system itself"),
        ("none", {"mount_opts": "noatime, _netdev"}, "fix mount_opts"),
    ],
)
def test_refusals_write_nothing(run_module, tmp_paths, storage, loopdev, by_id, prepare, extra, message):
    device = loopdev("ext4" if prepare == "ext4" else "none")
    if prepare == "other-label":
        _mkfs_local(device, label="other")
    signature = _blkid(device)
    args = _volume_args(storage, by_id(device), **extra)
    for check in (True, False):
        before = snapshot(tmp_paths)
        result = run_module(OV, args, check=check)
        assert result.get("failed") and not result["changed"], result
        assert message in result["msg"], result["msg"]
        assert snapshot(tmp_paths) == before
    assert _blkid(device) == signature, "the device is untouched"
    if prepare != "none":
        assert "force: true" in result["msg"]


def test_kernel_names_are_refused_naming_the_by_id_names(run_module, tmp_paths, storage, loopdev, by_id):
    device = loopdev("none")
    name = by_id(device)
    result = fails_cleanly(run_module, OV, _volume_args(storage, device), tmp_paths, "is not a /dev/disk/by-id/ name")
    assert f"use one of its stable names: {name}" in result["msg"]
    assert result["msg"].endswith("fix device")


def test_a_missing_device_is_refused_naming_the_host(run_module, tmp_paths, storage):
    args = _volume_args(storage, BY_ID + "/flexvdi-test-not-mapped")
    result = fails_cleanly(run_module, OV, args, tmp_paths, "is not present on host localhost")
    assert "fix the LUN mapping or device" in result["msg"]


def test_a_too_small_device_is_refused_in_check_mode_too(run_module, tmp_paths, storage, loopdev, by_id):
    """mkfs.ocfs2 --dry-run checks the format's arguments against the device: check mode knows."""
    device = loopdev("none")
    args = _volume_args(storage, by_id(device))
    for check in (True, False):
        before = snapshot(tmp_paths)
        result = run_module(OV, args, check=check)
        assert result.get("failed") and not result["changed"], result
        assert "mkfs.ocfs2 refuses to format" in result["msg"] and "at least 2 gigabytes" in result["msg"]
        assert snapshot(tmp_paths) == before
    assert _blkid(device) == {}


# --- formatting: planned in check mode, and the arguments mkfs.ocfs2 accepts ---------------------


def test_check_mode_plans_the_format_and_formats_nothing(
    run_module, tmp_paths, storage, loopdev, by_id, qemu_user, o2cb_seen_online
):
    device = loopdev("none", size_mb=BIG_MB)
    name = by_id(device)
    before = snapshot(tmp_paths)
    result = run_module(OV, _volume_args(storage, name, slots=3), check=True, diff=True, namespace=o2cb_seen_online())
    assert not result.get("failed"), result.get("msg")
    mount_point = os.path.join(tmp_paths["root"], "S", "V")
    assert result["changed"]
    assert result["actions"] == [
        f"save the first and last 16 MiB of blank {name} ({device}) and its OCFS2 backup superblock places, "
        "to put them back should the format fail",
        f"format {name} ({device}) with OCFS2: label S.V, 3 slots, o2cb cluster flexvdi "
        f"({' '.join(mkfs_argv(name, 'S.V', 3, 'flexvdi'))})",
        f"create directory {mount_point}",
        f"update {tmp_paths['fstab']}",
        f"mount {name} on {mount_point} (ocfs2, _netdev,noatime,x-systemd.after=o2cb.service,x-systemd.after=ocfs2.service)",
        f"set owner of {mount_point} to {qemu_user}:{grp.getgrgid(pwd.getpwnam(qemu_user).pw_gid).gr_name} once mounted",
        f"update {tmp_paths['registry']}",
    ]
    assert snapshot(tmp_paths) == before
    assert _blkid(device) == {}, "check mode formats nothing"
    after = json.loads(result["diff"][-1]["after"])
    assert after["image_storages"]["S"]["volumes"]["V"]["label"] == "S.V"


def test_mkfs_accepts_the_arguments_the_module_builds(loopdev):
    """The one mkfs command line, as a dry run on a real device: accepted, and nothing written."""
    device = loopdev("none", size_mb=BIG_MB)
    argv = mkfs_argv(device, "MyImageStorage.SAN1", 4, "flexvdi", dry_run=True)
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Dry run" in proc.stdout
    assert _blkid(device) == {}
    too_long = mkfs_argv(device, "x" * 64, 4, "flexvdi", dry_run=True)
    bad = subprocess.run(too_long, capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "Volume label too long" in bad.stderr, "the 63-character limit is mkfs's own"


# --- a format never leaves a half-made filesystem (issue 17) --------------------------------------


def test_a_format_with_o2cb_offline_fails_naming_the_cluster_and_writes_nothing(
    run_module, tmp_paths, storage, loopdev, by_id
):
    """Checked before mkfs.ocfs2 runs (check mode, which cannot see the ocfs2_cluster role start o2cb
    earlier in the play, warns); a second run says the same, not that a half-made filesystem is in the way."""
    if os.path.isdir("/sys/kernel/config/cluster/flexvdi"):
        pytest.skip("the o2cb cluster flexvdi is online on this host")
    device = loopdev("none", size_mb=BIG_MB)
    name = by_id(device)
    args = _volume_args(storage, name)
    before = snapshot(tmp_paths)
    checked = run_module(OV, args, check=True)
    assert not checked.get("failed"), checked.get("msg")
    assert any("o2cb cluster flexvdi is not online on host localhost yet" in w for w in checked["warnings"]), checked
    assert snapshot(tmp_paths) == before and _blkid(device) == {}
    for check in (False, False):
        before = snapshot(tmp_paths)
        result = run_module(OV, args, check=check)
        assert result.get("failed") and not result["changed"], result
        assert (
            f"refusing to format {name} ({device}): the o2cb cluster flexvdi is not online on host localhost"
            in result["msg"]
        ), result["msg"]
        assert "nothing was written" in result["msg"] and "flexvdi.storage.ocfs2_cluster" in result["msg"]
        assert "never finished" not in result["msg"]
        assert snapshot(tmp_paths) == before
        assert _blkid(device) == {}, "nothing was written"


def test_a_format_that_fails_after_writing_is_undone(
    run_module, tmp_paths, storage, loopdev, by_id, o2cb_seen_online, tmp_path
):
    """mkfs.ocfs2 writes a whole OCFS2 labelled S.V and exits 1: the module puts back what it saved
    and proves the device blank again; the next run fails the same way, not on a half-made filesystem."""
    namespace = o2cb_seen_online(mkfs="writes then fails")
    device = loopdev("none", size_mb=BIG_MB)
    name = by_id(device)
    args = _volume_args(storage, name)
    before = snapshot(tmp_paths)
    checked = run_module(OV, args, check=True, namespace=namespace)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["actions"][0].startswith(f"save the first and last 16 MiB of blank {name} ({device})")
    for _run in range(2):
        result = run_module(OV, args, namespace=namespace)
        assert result.get("failed") and not result["changed"], result
        msg = result["msg"]
        assert msg.startswith(f"format {name} ({device}) with OCFS2: label S.V"), msg
        assert "mkfs.ocfs2 failed (rc=1): mkfs.ocfs2: Unable to access cluster service" in msg, msg
        assert f"; undone: save the first and last 16 MiB of blank {name} ({device})" in msg, msg
        assert "could NOT undo" not in msg, msg
        written = (tmp_path / "written").read_text()
        assert "TYPE=ocfs2" in written and "LABEL=S.V" in written, "the stand-in wrote a format before failing"
        (tmp_path / "written").unlink()
        assert _blkid(device) == {}, "blank again"
        assert read_superblock(device) is None
        assert snapshot(tmp_paths) == before


def test_the_real_mkfs_failing_without_o2cb_is_undone(run_module, tmp_paths, storage, loopdev, by_id, o2cb_seen_online):
    """The module believes the cluster online, the kernel has no o2cb: what the real mkfs.ocfs2 does.
    Here it exits 1 after a child it forked for modprobe wrote a whole format (issue 17): undone. Where
    it formats and succeeds instead, the format is kept and the failure (the mount) says so."""
    device = loopdev("none", size_mb=BIG_MB)
    name = by_id(device)
    before = snapshot(tmp_paths)
    result = run_module(OV, _volume_args(storage, name), namespace=o2cb_seen_online())
    assert result.get("failed"), result
    if result["msg"].startswith(f"format {name} ({device}) with OCFS2"):
        assert f"; undone: save the first and last 16 MiB of blank {name} ({device})" in result["msg"]
        assert "could NOT undo" not in result["msg"] and not result["changed"], result["msg"]
        assert _blkid(device) == {}
    else:
        assert f"could NOT undo: format {name} ({device}) with OCFS2" in result["msg"], result["msg"]
        assert _blkid(device)["LABEL"] == "S.V"
    assert snapshot(tmp_paths) == before


def test_restore_puts_a_device_mkfs_formatted_back_to_blank(loopdev):
    """The undo's two halves on a real device around the real mkfs.ocfs2, whatever its exit code."""
    device = loopdev("none", size_mb=BIG_MB)
    saved = save_regions(device)
    proc = subprocess.run(mkfs_argv(device, "S.V", 2, "flexvdi"), capture_output=True, text=True, check=False)
    found = _blkid(device)
    assert (found.get("TYPE"), found.get("LABEL")) == ("ocfs2", "S.V"), f"rc={proc.returncode}: {proc.stderr[-500:]}"
    restore_regions(device, saved)
    assert _blkid(device) == {}
    assert read_superblock(device) is None


def test_superblock_reader_agrees_with_tunefs(loopdev):
    device = loopdev("none")
    _mkfs_local(device, label="S.V", slots=3)
    found = read_superblock(device)
    query = subprocess.run(
        ["tunefs.ocfs2", "-Q", "%V %N %U %H\n", device], capture_output=True, text=True, check=True
    ).stdout.split()
    assert (found["label"], str(found["slots"]), found["uuid"]) == tuple(query[:3])
    assert found["local"] and "local" in query[3:]
    assert found["refcount"] and "refcount" in query[3:], "reflinks are on by default"
    assert read_superblock(loopdev("ext4")) is None


# --- adoption of a device that carries our label ------------------------------------------------


def test_adoption_up_to_the_mount(run_module, tmp_paths, storage, loopdev, by_id, qemu_user):
    """A device already OCFS2 with our label is adopted (never formatted): planned in check mode;
    on a kernel without OCFS2 the mount fails and fstab, directories and registry are undone."""
    device = loopdev("none")
    _mkfs_local(device, label="S.V", slots=2)
    uuid = _blkid(device)["UUID"]
    name = by_id(device)
    args = _volume_args(storage, name)
    mount_point = os.path.join(tmp_paths["root"], "S", "V")
    before = snapshot(tmp_paths)
    checked = run_module(OV, args, check=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["actions"][:3] == [
        f"create directory {mount_point}",
        f"update {tmp_paths['fstab']}",
        f"mount {name} on {mount_point} (ocfs2, _netdev,noatime,x-systemd.after=o2cb.service,x-systemd.after=ocfs2.service)",
    ]
    assert not any(a.startswith(("format", "wait")) for a in checked["actions"])
    assert snapshot(tmp_paths) == before
    volume = checked["volume"]
    assert (volume["label"], volume["mount_type"], volume["slots"], volume["kernel_name"]) == (
        "S.V",
        "local",
        2,
        device,
    )

    real = run_module(OV, args)
    if _kernel_has_ocfs2():  # a kernel with OCFS2 mounts a local volume: the whole path, then its removal
        assert not real.get("failed"), real.get("msg")
        assert real["volume"]["mounted"] and real["volume"]["qemu_writable"]
        assert not run_module(OV, args)["changed"]
        gone = run_module(OV, dict(storage, state="absent"))
        assert gone["changed"] and not gone.get("failed"), gone.get("msg")
    else:
        assert real.get("failed") and not real["changed"], real
        assert (
            f"mount {name} on {mount_point} (ocfs2, _netdev,noatime,x-systemd.after=o2cb.service,x-systemd.after=ocfs2.service) failed"
            in real["msg"]
        )
        assert f"undone: update {tmp_paths['fstab']}, create directory {mount_point}" in real["msg"]
        assert "could NOT undo" not in real["msg"]
        assert snapshot(tmp_paths) == before
    assert _blkid(device)["UUID"] == uuid, "adopted, never formatted"


def test_a_local_volume_is_refused_on_a_shared_storage(run_playbook, tmp_paths, loopdev, by_id):
    device = loopdev("none")
    _mkfs_local(device, label="S.V")
    name = by_id(device)
    result = run_playbook(_two_host_play(tmp_paths, name), inventory=_two_host_inventory(tmp_paths))
    assert result.rc != 0
    for host in ("node1", "node2"):
        assert _failed(result.stdout, host, "formatted for one host only (mkfs.ocfs2 -M local)")
    assert _registered_volumes(tmp_paths) == {"node1": {}, "node2": {}}


# --- status and removal through the volume type table -------------------------------------------


def _register_ocfs2_record(tmp_paths, name, mount_point):
    data = registry(tmp_paths)
    data["image_storages"]["S"]["volumes"]["V"] = {
        "type": "ocfs2",
        "mount_point": mount_point,
        "src": name,
        "kind": "block",
        "fstype": "ocfs2",
        "opts": "_netdev,noatime",
        "owner_qemu": True,
        "label": "S.V",
        "cluster_name": "flexvdi",
        "slots": 2,
    }
    with open(tmp_paths["registry"], "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    with open(tmp_paths["fstab"], "a", encoding="utf-8") as handle:
        handle.write(f"{name}\t{mount_point}\tocfs2\t_netdev,noatime\t0\t0\n")


def test_storage_info_and_removal_of_an_unmounted_volume(run_module, tmp_paths, storage, loopdev, by_id):
    device = loopdev("none")
    _mkfs_local(device, label="S.V", slots=2)
    name = by_id(device)
    mount_point = os.path.join(tmp_paths["root"], "S", "V")
    _register_ocfs2_record(tmp_paths, name, mount_point)

    info = run_module(INFO, {"registry": tmp_paths["registry"], "fstab": tmp_paths["fstab"]})
    assert not info.get("failed"), info.get("msg")
    volume = info["image_storages"][0]["volumes"][0]
    assert (volume["type"], volume["status"], volume["in_fstab"]) == ("ocfs2", "offline", True)
    assert f"{mount_point} is not mounted from {name}" in volume["message"]
    assert (volume["device"], volume["kernel_name"], volume["label"]) == (name, device, "S.V")
    assert (volume["slots"], volume["slots_used"], volume["nodes"], volume["mount_type"]) == (2, 0, [], "local")
    assert volume["uuid"] == _blkid(device)["UUID"].replace("-", "").upper()

    removal = dict(storage, state="absent")
    before = snapshot(tmp_paths)
    checked = run_module(OV, removal, check=True)
    assert checked["changed"] and snapshot(tmp_paths) == before
    gone = run_module(OV, removal)
    assert gone["changed"] and not gone.get("failed"), gone.get("msg")
    assert gone["actions"] == [f"update {tmp_paths['fstab']}", f"update {tmp_paths['registry']}"]
    assert registry(tmp_paths)["image_storages"]["S"]["volumes"] == {}
    with open(tmp_paths["fstab"], encoding="utf-8") as handle:
        assert name not in handle.read()
    assert _blkid(device)["LABEL"] == "S.V", "the data stays on the device"
    assert not run_module(OV, removal)["changed"]


def test_image_storage_removal_reaches_ocfs2_volumes(run_module, tmp_paths, storage, loopdev, by_id):
    device = loopdev("none")
    _mkfs_local(device, label="S.V")
    name = by_id(device)
    _register_ocfs2_record(tmp_paths, name, os.path.join(tmp_paths["root"], "S", "V"))
    common = {"registry": tmp_paths["registry"], "fstab": tmp_paths["fstab"], "name": "S", "state": "absent"}
    fails_cleanly(run_module, IS, common, tmp_paths, "still has volumes on this host (V)")
    gone = run_module(IS, dict(common, force=True))
    assert gone["changed"] and not gone.get("failed"), gone.get("msg")
    assert registry(tmp_paths)["image_storages"] == {}
    with open(tmp_paths["fstab"], encoding="utf-8") as handle:
        assert name not in handle.read()


def test_an_external_volume_name_is_not_taken_over(run_module, tmp_paths, storage, loopdev, by_id):
    plain = os.path.join(tmp_paths["root"], "plain")
    os.mkdir(plain)
    ext = run_module("flexvdi.storage.external_volume", dict(storage, mount_point=plain))
    assert ext["changed"] and not ext.get("failed"), ext.get("msg")
    result = fails_cleanly(
        run_module,
        OV,
        _volume_args(storage, by_id(loopdev("none"))),
        tmp_paths,
        "registered with type external, not ocfs2",
    )
    assert "flexvdi.storage.external_volume" in result["msg"]


# --- two hosts: every host's view is compared on the controller ---------------------------------


def _two_host_inventory(tmp_paths, node2_by_id=None):
    """node1 and node2, both this machine; node2's /dev/disk/by-id is ``node2_by_id`` when given."""
    base = os.path.dirname(tmp_paths["root"])
    node2 = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    if node2_by_id is not None:
        wrapper = os.path.join(base, "node2-python")
        with open(wrapper, "w", encoding="utf-8") as handle:
            handle.write(
                "#!/bin/sh\n# node2: this machine, seeing %s as /dev/disk/by-id\n"
                "exec unshare --mount --propagation private -- /bin/sh -c "
                '\'mount --bind "$0" /dev/disk/by-id && exec "$@"\' %s %s "$@"\n'
                % (node2_by_id, node2_by_id, sys.executable)
            )
        os.chmod(wrapper, stat.S_IRWXU)
        node2["ansible_python_interpreter"] = wrapper
    node1 = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    path = os.path.join(base, "inventory.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"all": {"hosts": {"node1": node1, "node2": node2}}}, handle)
    return path


def _two_host_play(tmp_paths, name, hosts="all", **volume):
    """Image storage S of node1 and node2 (each host its own registry and fstab), then the volume in two steps."""
    base = os.path.dirname(tmp_paths["root"])
    for host in ("node1", "node2"):
        fstab = os.path.join(base, f"{host}.fstab")
        if not os.path.exists(fstab):
            shutil.copyfile(tmp_paths["fstab"], fstab)
    args = dict({"image_storage": "S", "name": "V", "device": name}, **volume)
    play = [
        {
            "hosts": hosts,
            "gather_facts": False,
            "module_defaults": {
                "group/flexvdi.storage.all": {
                    "registry": base + "/{{ inventory_hostname }}.json",
                    "fstab": base + "/{{ inventory_hostname }}.fstab",
                }
            },
            "tasks": [
                {IS: {"name": "S", "hosts": ["node1", "node2"], "root": os.path.join(tmp_paths["root"], "S")}},
                {OV: dict(args, identify=True), "register": "seen"},
                {OV: dict(args, identified_by="seen")},
            ],
        }
    ]
    return json.dumps(play)


def _registered_volumes(tmp_paths):
    base = os.path.dirname(tmp_paths["root"])
    found = {}
    for host in ("node1", "node2"):
        with open(os.path.join(base, f"{host}.json"), encoding="utf-8") as handle:
            found[host] = json.load(handle)["image_storages"]["S"]["volumes"]
    return found


def _failed(stdout, host, words):
    """Whether ``host``'s task failed with a message holding ``words`` (results are one JSON line each)."""
    return any(line.startswith(f"fatal: [{host}]") and words in line for line in stdout.splitlines())


@pytest.mark.parametrize("node2_sees", ["another disk", "no disk"])
def test_hosts_that_see_different_disks_fail_every_host(run_playbook, tmp_paths, loopdev, by_id, node2_sees):
    device = loopdev("none", size_mb=BIG_MB)
    name = by_id(device)
    node2_dir = os.path.join(os.path.dirname(tmp_paths["root"]), "node2-by-id")
    os.mkdir(node2_dir)
    if node2_sees == "another disk":
        os.symlink(loopdev("none", size_mb=BIG_MB + 100), os.path.join(node2_dir, os.path.basename(name)))
    result = run_playbook(_two_host_play(tmp_paths, name), inventory=_two_host_inventory(tmp_paths, node2_dir))
    assert result.rc != 0, result.stdout[-3000:]
    words = "sees no such device" if node2_sees == "no disk" else "(different size)"
    for host in ("node1", "node2"):
        assert _failed(result.stdout, host, "do not all see the same disk at " + name), result.stdout[-4000:]
        assert _failed(result.stdout, host, words), result.stdout[-4000:]
    assert "no host formats or mounts it" in result.stdout
    assert _registered_volumes(tmp_paths) == {"node1": {}, "node2": {}}
    assert _blkid(device) == {}, "nothing was formatted"


def test_slots_below_the_hosts_fail_every_host(run_playbook, tmp_paths, loopdev, by_id):
    device = loopdev("none", size_mb=BIG_MB)
    name = by_id(device)
    result = run_playbook(_two_host_play(tmp_paths, name, slots=1), inventory=_two_host_inventory(tmp_paths))
    assert result.rc != 0
    for host in ("node1", "node2"):
        assert _failed(result.stdout, host, "slots 1 is fewer than the 2 hosts"), result.stdout[-4000:]
    assert _registered_volumes(tmp_paths) == {"node1": {}, "node2": {}}
    assert _blkid(device) == {}


def test_without_the_designated_host_a_blank_device_fails_fast(run_playbook, tmp_paths, loopdev, by_id):
    """node1 formats; a run of node2 alone (--limit) would only wait for it: it fails at once instead."""
    device = loopdev("none", size_mb=BIG_MB)
    name = by_id(device)
    result = run_playbook(_two_host_play(tmp_paths, name, hosts="node2"), inventory=_two_host_inventory(tmp_paths))
    assert result.rc != 0
    assert _failed(result.stdout, "node2", "node1, the host that formats it"), result.stdout[-4000:]
    assert _blkid(device) == {}


def test_the_other_host_plans_to_wait_for_the_designated_one(run_playbook, tmp_paths, loopdev, by_id, o2cb_seen_online):
    """Check mode on both hosts: node1 plans the format, node2 plans to wait for it; nothing is written."""
    device = loopdev("none", size_mb=BIG_MB)
    name = by_id(device)
    inventory = _two_host_inventory(tmp_paths)
    play = json.loads(_two_host_play(tmp_paths, name))
    play[0]["tasks"][2]["register"] = "converged"
    play[0]["tasks"].append({"ansible.builtin.debug": {"var": "converged.actions"}})
    assert run_playbook(json.dumps([dict(play[0], tasks=play[0]["tasks"][:1])]), inventory=inventory).rc == 0
    checked = run_playbook(json.dumps(play), inventory=inventory, check=True, namespace=o2cb_seen_online())
    assert checked.rc == 0, checked.stdout[-4000:]
    assert f"format {name} ({device}) with OCFS2" in checked.stdout
    assert f"wait up to 300 s for node1 to format {name} (OCFS2 labelled S.V)" in checked.stdout
    assert _registered_volumes(tmp_paths) == {"node1": {}, "node2": {}}
    assert _blkid(device) == {}


# --- the storage role ---------------------------------------------------------------------------


def test_role_reports_identities_then_converges(run_playbook, run_module, tmp_paths, loopdev, by_id, o2cb_seen_online):
    """The role runs identify on every host, then the converge naming those reports (identified_by)."""
    blank = by_id(loopdev("none", size_mb=BIG_MB))
    adopted_device = loopdev("none")
    _mkfs_local(adopted_device, label="S.Adopted")
    adopted = by_id(adopted_device)
    storages = [
        {
            "name": "S",
            "hosts": ["localhost"],
            "root": os.path.join(tmp_paths["root"], "S"),
            "volumes": [
                {"name": "New", "type": "ocfs2", "device": blank, "slots": 2},
                {"name": "Adopted", "type": "ocfs2", "device": adopted},
            ],
        }
    ]
    play = json.dumps([{"hosts": "localhost", "gather_facts": False, "roles": [{"role": "flexvdi.storage.storage"}]}])
    extra = {
        "flexvdi_image_storages": storages,
        "storage_registry": tmp_paths["registry"],
        "storage_fstab": tmp_paths["fstab"],
    }
    registered = run_module(IS, {"registry": tmp_paths["registry"], "name": "S", "root": storages[0]["root"]})
    assert registered["changed"] and not registered.get("failed"), registered.get("msg")
    before = snapshot(tmp_paths)
    checked = run_playbook(play, extra_vars=extra, check=True, verbosity=1, namespace=o2cb_seen_online())
    assert checked.rc == 0, checked.stdout[-4000:]
    assert "TASK [flexvdi.storage.storage : Report the disk each host sees for its OCFS2 volumes]" in checked.stdout
    assert f"format {blank} (" in checked.stdout
    assert snapshot(tmp_paths) == before
    assert _blkid(os.path.realpath(blank)) == {}

    assert _blkid(adopted_device)["LABEL"] == "S.Adopted"

    # For real, the adopted volume alone (a blank one would really be formatted): on this kernel its
    # mount fails and is undone; the role fails naming that object, nothing is left behind.
    if _kernel_has_ocfs2():
        return
    storages[0]["volumes"] = storages[0]["volumes"][1:]
    real = run_playbook(play, extra_vars=extra)
    assert real.rc != 0
    failed = [line for line in real.stdout.splitlines() if line.startswith("fatal: [localhost]: FAILED! =>")]
    assert failed, real.stdout[-4000:]
    result = json.loads(failed[0].split("=>", 1)[1])
    assert result["failed_objects"] == ["ocfs2 S/Adopted"], result
    [adopted_result] = [o for o in result["objects"] if o["name"] == "Adopted"]
    assert f"mount {adopted} on " in adopted_result["msg"] and "undone: create directory" in adopted_result["msg"]
    assert snapshot(tmp_paths) == before
