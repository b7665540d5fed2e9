"""The traps a careful admin falls into, closed: each test failed on the code before the fix.

Fresh hosts, host sets that --limit must not shrink, shared block devices the admin mounts,
fstab fields, system directories, changed options on a live mount, failed source changes,
read-only status, images below the top level, a qemu user blocked by a parent directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from _state import fails_cleanly, mounts, registry, snapshot, three_runs

EV = "flexvdi.storage.external_volume"
IS = "flexvdi.storage.image_storage"
INFO = "flexvdi.storage.storage_info"


def _mount(device, path, *opts):
    os.makedirs(path, exist_ok=True)
    argv = ["mount"] + (["-o", ",".join(opts)] if opts else []) + [device, path]
    subprocess.run(argv, check=True, capture_output=True)


def _mountinfo(path):
    """(mount id, per-mount options) of the mount on ``path``, or None."""
    found = None
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == path:
                found = (fields[0], set(fields[5].split(",")))
    return found


def _storage(run_module, tmp_paths, **extra):
    common = {"registry": tmp_paths["registry"], "fstab": tmp_paths["fstab"]}
    result = run_module(IS, dict(common, name="S", root=os.path.join(tmp_paths["root"], "S"), **extra))
    assert result["changed"] and not result.get("failed"), result
    return dict(common, image_storage="S")


def _two_host_inventory(tmp_paths):
    """node1 and node2, both this machine through the local connection."""
    path = os.path.join(tmp_paths["root"], "..", "inventory.json")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"all": {"hosts": {"node1": local, "node2": local}}}, handle)
    return os.path.abspath(path)


# --- 1. a fresh host -------------------------------------------------------------------------


def test_fresh_host_image_storage_check_then_real(run_module, tmp_paths):
    """No registry directory yet: check mode predicts exactly what the real run does."""
    registry_path = os.path.join(tmp_paths["root"], "etc", "flexvdi", "storage.json")
    paths = dict(tmp_paths, registry=registry_path)
    args = {"name": "S", "registry": registry_path, "root": os.path.join(tmp_paths["root"], "S")}
    real = three_runs(run_module, IS, args, paths)
    assert f"create directory {os.path.dirname(registry_path)}" in real["actions"]
    assert os.path.isfile(registry_path)


def test_fresh_host_external_volume_agrees_in_check_mode(run_module, tmp_paths):
    """The first object on a host being a volume: check mode and the real run fail alike."""
    registry_path = os.path.join(tmp_paths["root"], "etc", "flexvdi", "storage.json")
    args = {"image_storage": "S", "name": "V", "mount_point": os.path.join(tmp_paths["root"], "v")}
    args["registry"] = registry_path
    checked = run_module(EV, args, check=True)
    real = run_module(EV, args)
    assert checked.get("failed") and real.get("failed")
    assert checked["msg"] == real["msg"]
    assert "is not registered on this host" in real["msg"]
    assert not os.path.exists(os.path.dirname(registry_path))


# --- 2. host sets are the declaration's ------------------------------------------------------


def test_omitted_hosts_refused_on_a_multi_host_inventory(run_playbook, tmp_paths):
    inventory = _two_host_inventory(tmp_paths)
    play = f"""
- hosts: node1
  gather_facts: false
  tasks:
    - flexvdi.storage.image_storage:
        name: S
        registry: {tmp_paths["registry"]}
        root: {tmp_paths["root"]}/S
"""
    result = run_playbook(play, inventory=inventory)
    assert result.rc != 0
    assert "hosts is not set and the inventory has 2 hosts" in result.stdout
    assert not os.path.exists(tmp_paths["registry"])


def test_omitted_hosts_never_shrink_a_registered_storage(run_playbook, run_module, tmp_paths):
    inventory = _two_host_inventory(tmp_paths)
    play = f"""
- hosts: node1
  gather_facts: false
  tasks:
    - flexvdi.storage.image_storage:
        name: S
        hosts: [node1, node2]
        registry: {tmp_paths["registry"]}
        root: {tmp_paths["root"]}/S
"""
    assert run_playbook(play, inventory=inventory).rc == 0
    before = snapshot(tmp_paths)
    # A single-host inventory (say, a slice or a by-hand run): omitting hosts must not make it ours alone.
    result = run_module(IS, {"name": "S", "registry": tmp_paths["registry"], "root": tmp_paths["root"] + "/S"})
    assert result.get("failed")
    assert "registered on this host with hosts node1, node2" in result["msg"]
    assert "set hosts" in result["msg"]
    assert snapshot(tmp_paths) == before


def test_admin_mounted_ext4_on_a_shared_storage_is_refused(run_playbook, run_module, tmp_paths, loopdev):
    """No src: what the admin mounted is checked too (ext4 from a block device, two hosts)."""
    inventory = _two_host_inventory(tmp_paths)
    mount_point = os.path.join(tmp_paths["root"], "lun")
    _mount(loopdev("ext4"), mount_point)
    play = f"""
- hosts: node1
  gather_facts: false
  module_defaults:
    group/flexvdi.storage.all:
      registry: {tmp_paths["registry"]}
      fstab: {tmp_paths["fstab"]}
      inventory_hostname: node1
  tasks:
    - flexvdi.storage.image_storage:
        name: S
        hosts: [node1, node2]
        root: {tmp_paths["root"]}/S
    - flexvdi.storage.external_volume:
        image_storage: S
        name: V
        mount_point: {mount_point}
      register: refused
      ignore_errors: true
    - ansible.builtin.assert:
        that:
          - refused is failed
          - "'is not a cluster filesystem' in refused.msg"
          - "'shared: false' in refused.msg"
    - flexvdi.storage.external_volume:
        image_storage: S
        name: V
        mount_point: {mount_point}
        shared: false
"""
    result = run_playbook(play, inventory=inventory)
    assert result.rc == 0, result.stdout
    assert registry(tmp_paths)["image_storages"]["S"]["volumes"]["V"]["shared"] is False


# --- 3 and 4. what reaches fstab -------------------------------------------------------------


def test_block_device_without_options_gets_nofail(run_module, tmp_paths, loopdev):
    storage = _storage(run_module, tmp_paths)
    device = loopdev("ext4")
    mount_point = os.path.join(tmp_paths["root"], "v")
    real = three_runs(run_module, EV, dict(storage, name="V", mount_point=mount_point, src=device), tmp_paths)
    assert f"{device}\t{mount_point}\text4\tnofail\t0\t0" in open(tmp_paths["fstab"]).read()
    assert real["volume"]["in_fstab"] is True
    info = run_module(INFO, {"registry": tmp_paths["registry"], "fstab": tmp_paths["fstab"]})
    assert info["image_storages"][0]["volumes"][0]["in_fstab"] is True


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fstype", "ext4\n/dev/sda /x ext4", "fstype 'ext4\\n/dev/sda /x ext4' is not one filesystem type name"),
        ("fstype", "nfs ext4", "fstype 'nfs ext4' is not one filesystem type name"),
        ("fstype", "nosuchfs", "fstype nosuchfs is unknown on this host"),
        ("opts", "rw\n/dev/sda /x ext4 defaults 0 0", "opts 'rw\\n/dev/sda /x ext4 defaults 0 0': option"),
        ("opts", "rw,#comment", "option '#comment' contains '#'"),
        ("opts", "rw, noatime", "option ' noatime' contains ' '"),
    ],
)
def test_unvalidated_fields_never_reach_fstab(run_module, tmp_paths, loopdev, field, value, message):
    storage = _storage(run_module, tmp_paths)
    args = dict(storage, name="V", mount_point=os.path.join(tmp_paths["root"], "v"), src=loopdev("ext4"))
    args[field] = value
    result = fails_cleanly(run_module, EV, args, tmp_paths, message)
    assert f"fix {field}" in result["msg"]


# --- 5. system directories and numbers ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/etc", "/usr", "/var/lib", "/home", "/"])
def test_system_directories_are_never_volumes(run_module, tmp_paths, path):
    storage = _storage(run_module, tmp_paths)
    st = os.stat(path)
    listing = sorted(os.listdir(path))
    result = fails_cleanly(
        run_module,
        EV,
        dict(storage, name="V", mount_point=path, owner_qemu=True),
        tmp_paths,
        "is a directory of the system itself",
    )
    assert "fix mount_point" in result["msg"]
    after = os.stat(path)
    assert (after.st_uid, after.st_gid, after.st_mode) == (st.st_uid, st.st_gid, st.st_mode)
    assert sorted(os.listdir(path)) == listing


def test_image_storage_root_error_names_root(run_module, tmp_paths):
    result = fails_cleanly(
        run_module, IS, {"name": "S", "registry": tmp_paths["registry"], "root": "/var"}, tmp_paths, "root /var"
    )
    assert result["msg"].endswith("fix root")


@pytest.mark.parametrize("module", [EV, INFO, "flexvdi.storage.media_storage"])
def test_unknown_qemu_user_is_an_error_everywhere(run_module, tmp_paths, module):
    args = {"registry": tmp_paths["registry"], "qemu_user": "no-such-qemu"}
    if module == EV:
        args.update(image_storage="S", name="V", mount_point=os.path.join(tmp_paths["root"], "v"))
    elif module != INFO:
        args.update(name="m", server="192.0.2.1", share="media", username="u", password="p", state="absent")
    fails_cleanly(run_module, module, args, tmp_paths, "qemu_user no-such-qemu does not exist")


def test_options_a_module_ignored_are_gone(run_module, tmp_paths):
    result = run_module(IS, {"name": "S", "registry": tmp_paths["registry"], "qemu_user": "root"})
    assert result.get("failed")
    assert "qemu_user" in result["msg"] and "Unsupported parameters" in result["msg"]


# --- 6. what the module says is what the host has --------------------------------------------


def test_changed_opts_reach_the_live_mount(run_module, tmp_paths, loopdev):
    storage = _storage(run_module, tmp_paths)
    mount_point = os.path.join(tmp_paths["root"], "v")
    args = dict(storage, name="V", mount_point=mount_point, src=loopdev("ext4"), opts="rw,nofail")
    three_runs(run_module, EV, args, tmp_paths)
    mount_id, options = _mountinfo(mount_point)
    assert "rw" in options
    real = three_runs(run_module, EV, dict(args, opts="ro,nofail"), tmp_paths)
    assert any(a.startswith(f"remount {mount_point} with options ro,nofail") for a in real["actions"])
    assert _mountinfo(mount_point) == (mount_id, _mountinfo(mount_point)[1])
    assert "ro" in _mountinfo(mount_point)[1], "the live mount must carry the new options"


def test_options_that_need_an_unmount_are_guarded(run_module, tmp_paths, loopdev):
    """ext4 cannot change data= on a remount: applying it unmounts, which images refuse."""
    storage = _storage(run_module, tmp_paths)
    mount_point = os.path.join(tmp_paths["root"], "v")
    args = dict(storage, name="V", mount_point=mount_point, src=loopdev("ext4"), opts="data=ordered")
    three_runs(run_module, EV, args, tmp_paths)
    os.makedirs(os.path.join(mount_point, "pool"))
    with open(os.path.join(mount_point, "pool", "win.qcow2"), "wb") as handle:
        handle.write(b"QFI\xfb" + b"\0" * 60)
    result = run_module(EV, dict(args, opts="data=journal"))
    assert result.get("failed")
    assert "cannot change the options" in result["msg"] and "force: true" in result["msg"]
    assert "pool/win.qcow2" in result["msg"], "images below the top level count"
    assert mounts().get(mount_point) == "ext4", "the volume stays mounted"
    assert "data=ordered" in open(tmp_paths["fstab"]).read(), "fstab restored"
    forced = run_module(EV, dict(args, opts="data=journal", force=True))
    assert forced["changed"] and not forced.get("failed"), forced.get("msg")
    assert mounts().get(mount_point) == "ext4"


def test_failed_src_change_mounts_the_old_source_again(run_module, tmp_paths, loopdev):
    storage = _storage(run_module, tmp_paths)
    mount_point = os.path.join(tmp_paths["root"], "v")
    old, new = loopdev("ext4"), loopdev("ext4")
    args = dict(storage, name="V", mount_point=mount_point, src=old)
    three_runs(run_module, EV, args, tmp_paths)
    before = snapshot(tmp_paths)
    # The new device is ext4, but asked as xfs: mount(8) fails after the old one was unmounted.
    result = run_module(EV, dict(args, src=new, fstype="xfs"))
    assert result.get("failed")
    assert f"unmount {mount_point}" in result["msg"] and "could NOT undo" not in result["msg"]
    assert snapshot(tmp_paths) == before, "the old source is mounted again and fstab restored"
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        assert any(line.split()[4] == mount_point and old in line for line in handle)


# --- 8. storage_info and check mode write nothing ---------------------------------------------


def test_storage_info_and_check_mode_write_nothing(run_module, tmp_paths, loopdev, qemu_user):
    storage = _storage(run_module, tmp_paths)
    mount_point = os.path.join(tmp_paths["root"], "v")
    args = dict(storage, name="V", mount_point=mount_point, src=loopdev("xfs"), owner_qemu=True)
    real = run_module(EV, args)
    assert real["volume"]["reflink"] is True and real["volume"]["qemu_writable"] is True
    stamp = os.stat(mount_point).st_mtime_ns
    info = run_module(INFO, {"registry": tmp_paths["registry"]})
    volume = info["image_storages"][0]["volumes"][0]
    assert (volume["fallocate"], volume["reflink"], volume["qemu_writable"]) == (True, True, True)
    checked = run_module(EV, args, check=True)
    assert not checked["changed"]
    assert checked["volume"]["qemu_writable"] is True
    assert os.stat(mount_point).st_mtime_ns == stamp, "storage_info or check mode wrote into the volume"


# --- 13. the smaller ones ------------------------------------------------------------------------


def test_qemu_blocked_by_a_parent_names_the_parent(run_module, tmp_paths):
    storage = _storage(run_module, tmp_paths)
    parent = os.path.join(tmp_paths["root"], "private")
    os.mkdir(parent, 0o700)
    os.chmod(parent, 0o700)
    mount_point = os.path.join(parent, "images")
    os.mkdir(mount_point)
    args = dict(storage, name="V", mount_point=mount_point, owner_qemu=True)
    # owner_qemu asks that guests can use it: a volume they cannot is a failure, in check mode as in
    # the real run, naming what blocks it (the chown of the volume itself cannot fix its parent).
    checked = run_module(EV, args, check=True)
    real = run_module(EV, args)
    for result in (checked, real):
        assert result.get("failed"), result
        assert parent in result["msg"] and "guests will not start" in result["msg"], result["msg"]
        assert "owner_qemu" not in result["msg"], "owner_qemu is already true: say what blocks"
    # Without owner_qemu it stays a warning, and the details view says why.
    args["owner_qemu"] = False
    plain = run_module(EV, args)
    assert not plain.get("failed"), plain.get("msg")
    assert plain["volume"]["qemu_writable"] is False and parent in plain["volume"]["message"]


def test_removal_guard_counts_images_below_the_top(run_module, tmp_paths, loopdev):
    storage = _storage(run_module, tmp_paths)
    mount_point = os.path.join(tmp_paths["root"], "v")
    args = dict(storage, name="V", mount_point=mount_point, src=loopdev("ext4"))
    run_module(EV, args)
    os.makedirs(os.path.join(mount_point, "desktops", "sales"))
    with open(os.path.join(mount_point, "desktops", "sales", "d1.qcow2"), "wb") as handle:
        handle.write(b"QFI\xfb")
    result = fails_cleanly(run_module, EV, dict(storage, name="V", state="absent"), tmp_paths, "refusing to unmount")
    assert "desktops/sales/d1.qcow2" in result["msg"]


# --- 7. no hang on a dead server -----------------------------------------------------------------


@contextlib.contextmanager
def _dead_server_mount(path, source="10.9.9.9:/gv0", limit=60):
    """A FUSE mount whose daemon never answers: every stat below it blocks, as on a dead server.

    The kernel mounts it (mount(2) with an open /dev/fuse) and queues every request for a
    daemon that never reads them, exactly what a hard NFS mount or a Gluster client does when
    the server is gone. Closing the fd aborts the connection, so nothing stays blocked; a
    watchdog does that after ``limit`` seconds, so a regression fails the test instead of
    hanging it (and every process that touched the mount).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/dev/fuse", os.O_RDWR)
    opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0,subtype=glusterfs".encode()
    if libc.mount(source.encode(), path.encode(), b"fuse", 0, opts) != 0:
        os.close(fd)
        pytest.fail(f"cannot mount a FUSE filesystem here: errno {ctypes.get_errno()}", pytrace=False)
    lock, closed = threading.Lock(), []

    def abort():
        with lock:
            if not closed:
                os.close(fd)
                closed.append(True)

    watchdog = threading.Timer(limit, abort)
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()
        abort()
        subprocess.run(["umount", "-l", path], check=False, capture_output=True)


def test_dead_server_answers_in_seconds(run_module, tmp_paths):
    storage = _storage(run_module, tmp_paths)
    mount_point = os.path.join(tmp_paths["root"], "gluster")
    os.mkdir(mount_point)
    args = dict(storage, name="V", mount_point=mount_point)
    assert not run_module(EV, args).get("failed")
    with _dead_server_mount(mount_point):
        started = time.monotonic()
        info = run_module(INFO, {"registry": tmp_paths["registry"]})
        took = time.monotonic() - started
        assert not info.get("failed"), info.get("msg")
        volume = info["image_storages"][0]["volumes"][0]
        assert volume["status"] == "unresponsive", volume
        assert "Gluster server 10.9.9.9 is not responding" in volume["message"]
        assert took < 30, f"storage_info took {took:.1f}s with a dead server"

        started = time.monotonic()
        converge = run_module(EV, args)
        took = time.monotonic() - started
        assert converge.get("failed") and not converge["changed"]
        assert "Gluster server 10.9.9.9 is not responding" in converge["msg"]
        assert took < 30, f"a converge took {took:.1f}s with a dead server"


@contextlib.contextmanager
def _cached_then_stopped(src, path, limit=90):
    """A FUSE mount that answered once, then whose daemon stopped: the NFS trap of issue 16.

    bindfs (a FUSE daemon) with attributes cached for an hour: once it is stopped (SIGSTOP),
    stat and lstat of the mount point are still answered from the kernel's cache, as an NFS
    client answers them from its attribute cache for up to a minute after its server died,
    while statvfs waits for the daemon. Yields a function that stops it; a watchdog lets it
    go on after ``limit`` seconds, so a regression fails the test instead of hanging it.
    """
    subprocess.run(["bindfs", "-o", "attr_timeout=3600,entry_timeout=3600", src, path], check=True)
    pids = [
        int(p)
        for p in subprocess.run(["pgrep", "-f", f"^bindfs .* {path}$"], capture_output=True, text=True).stdout.split()
    ]
    assert len(pids) == 1, pids

    def resume():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pids[0], signal.SIGCONT)

    watchdog = threading.Timer(limit, resume)
    watchdog.start()
    try:
        yield lambda: os.kill(pids[0], signal.SIGSTOP)
    finally:
        watchdog.cancel()
        resume()
        subprocess.run(["umount", "-l", path], check=False, capture_output=True)


def _python(call, path):
    return [sys.executable, "-c", f"import os, sys; {call}(sys.argv[1])", path]


def _answers_within(argv, seconds):
    try:
        return subprocess.run(argv, capture_output=True, timeout=seconds).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def test_a_server_that_only_its_cache_answers_for_fails_the_converge(run_module, tmp_paths, tmp_path):
    """A converge right after the server died must not pass on the client's cached answers.

    Bounds: each module run waits 10 s for the probe, plus ansible-playbook's own start and
    the module's (4 to 8 s here, up to about 20 s on a loaded 2-core machine): 45 s tells
    "answered after its probe bound" from "hung" (the watchdog lets the daemon go at 90 s).
    """
    storage = _storage(run_module, tmp_paths)
    # Outside tmp_paths["root"], which snapshot() walks: a walk into the stopped mount would hang.
    src = str(tmp_path / "exported")
    mount_point = str(tmp_path / "fuse")
    os.mkdir(src)
    os.mkdir(mount_point)
    args = dict(storage, name="V", mount_point=mount_point, require_mountpoint=True)
    with _cached_then_stopped(src, mount_point) as stop:
        first = run_module(EV, args)
        assert not first.get("failed"), first.get("msg")
        assert first["volume"]["status"] == "online", first["volume"]
        os.stat(mount_point)  # the cache is warm
        stop()
        # The premise: lstat (what os.path.lexists asks) is answered from the cache, statvfs
        # not at all. (coreutils' stat asks statx for the birth time, which FUSE asks its
        # daemon for until it learns the daemon has no statx: not a question of the engine's.)
        assert _answers_within(_python("os.lstat", mount_point), 5), (
            "lstat of the stopped mount was not answered from the cache"
        )
        assert not _answers_within(_python("os.statvfs", mount_point), 2), (
            "statvfs was answered with the daemon stopped"
        )
        before = snapshot(tmp_paths)
        words = f"FUSE server {src} is not responding: {mount_point} (fuse from {src}) did not answer within 10 s"

        for check_mode in (True, False):
            started = time.monotonic()
            converge = run_module(EV, args, check=check_mode)
            took = time.monotonic() - started
            assert converge.get("failed") and not converge["changed"], converge
            assert (
                converge["msg"]
                == f"external volume V of image storage {storage['image_storage']}: {words}; nothing was changed"
            )
            assert took < 45, f"a converge took {took:.1f}s with the daemon stopped"
            assert snapshot(tmp_paths) == before

        info = run_module(INFO, {"registry": tmp_paths["registry"]})
        volume = info["image_storages"][0]["volumes"][0]
        assert (volume["status"], volume["message"]) == ("unresponsive", words)

    with _cached_then_stopped(src, mount_point):
        again = run_module(EV, args)
        assert not again.get("failed") and not again["changed"], again
        assert again["volume"]["status"] == "online"


def test_a_command_that_cannot_start_undoes_the_plan(run_playbook, run_module, tmp_paths):
    """mount(8) missing: a StorageError naming it, fstab and the new directory undone."""
    storage = _storage(run_module, tmp_paths)
    src = os.path.join(tmp_paths["root"], "data")
    os.mkdir(src)
    mount_point = os.path.join(tmp_paths["root"], "v")
    args = dict(storage, name="V", mount_point=mount_point, src=src)
    before = snapshot(tmp_paths)
    play = json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [{EV: args}]}])
    result = run_playbook(play, hide_commands=["mount"])
    assert result.rc != 0
    assert "mount cannot be run" in result.stdout
    assert "undone: update" in result.stdout and "create directory" in result.stdout
    assert snapshot(tmp_paths) == before
