"""In-process probes: bounded() children, read-only capabilities, recursive image walks.

The capability tests run on real loop-device filesystems (root only) and hold the read-only
answer against the writing measurement on the very same mounts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from _stamps import tree_stamps

from ansible_collections.flexvdi.storage.plugins.module_utils import _probe
from ansible_collections.flexvdi.storage.plugins.module_utils._probe import (
    bounded,
    capabilities,
    capabilities_readonly,
    count_images,
    images,
    is_network_fstype,
    volume_facts,
)

QCOW2 = b"QFI\xfb" + b"\0" * 508


# --- helpers run in bounded()'s child (module level: plain functions, like the engine's) ------


def _echo(*args):
    return list(args)


def _fail(exc):
    raise exc


def _unserializable():
    return object()


def _stdio_targets():
    return [os.readlink(f"/proc/self/fd/{fd}") for fd in (0, 1, 2)]


def _is_open(fd):
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _sleep_forever(pidfile, ignore_term=False):
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(pidfile).write_text(str(os.getpid()))
    time.sleep(30)


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def _gone(pid):
    """Whether ``pid`` is neither running nor a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --- bounded() --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "args", "expected"),
    [
        (int, ("42",), 42),
        (str.upper, ("abc",), "ABC"),
        (_echo, (1, "two", None, 3.5), [1, "two", None, 3.5]),
        (dict, (), {}),
        (tuple, ([1, 2],), [1, 2]),  # JSON: a tuple comes back as a list
        (lambda: None, (), None),
    ],
)
def test_bounded_returns_the_value(fn, args, expected):
    assert bounded(fn, *args, timeout=5) == (True, expected)


def test_bounded_runs_a_probe_of_this_module():
    ok, value = bounded(_probe.space, "/")
    assert ok and set(value) == {"size", "free"} and value["size"] > 0


def test_bounded_carries_a_large_value_through_the_pipe():
    ok, value = bounded(str.__mul__, "x", 3 * 1024 * 1024, timeout=10)
    assert ok and len(value) == 3 * 1024 * 1024


@pytest.mark.parametrize(
    ("fn", "args", "reason"),
    [
        (_fail, (ValueError("bad value"),), "ValueError: bad value"),
        (_fail, (SystemExit(3),), "SystemExit: 3"),
        (os.stat, ("/nonexistent/flexvdi",), "FileNotFoundError: [Errno 2] No such file or directory"),
        (_unserializable, (), "TypeError: Object of type object is not JSON serializable"),
        (_die, (), "the probe died of signal 9"),
    ],
)
def test_bounded_reports_failures(fn, args, reason):
    ok, value = bounded(fn, *args, timeout=5)
    assert ok is False
    assert value.startswith(reason)


@pytest.mark.parametrize("ignore_term", [False, True], ids=["sleeps", "ignores-sigterm"])
def test_bounded_times_out_and_leaves_no_child(tmp_path, ignore_term):
    pidfile = tmp_path / "pid"
    timeout = 1.0
    start = time.monotonic()
    ok, value = bounded(_sleep_forever, str(pidfile), ignore_term, timeout=timeout)
    elapsed = time.monotonic() - start
    assert (ok, value) == (False, "timeout")
    assert timeout <= elapsed < timeout + 2
    pid = int(pidfile.read_text())
    assert _gone(pid), f"the child {pid} is still there (running or an unreaped zombie)"


def test_bounded_child_holds_no_stdio_and_no_inherited_fd(tmp_path):
    """A hung child must hold neither the module's stdout nor an inherited lock file."""
    fd = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert bounded(_stdio_targets) == (True, ["/dev/null"] * 3)
        assert bounded(_is_open, fd) == (True, False)
        assert _is_open(fd)
    finally:
        os.close(fd)


def _bare_fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def test_bounded_is_cheap():
    """bounded() costs its fork and little more: at most 2x a bare fork and wait, + 1 ms.

    The baseline is measured in the same loop, call for call, so the bound holds on a loaded
    machine too (a fixed 10 ms failed at 14 ms while a lab booted beside it): what is proven is
    that the pipe, poll and JSON add no cost of their own, not this machine's speed.
    """
    ours, bare = [], []
    for _call in range(100):
        start = time.perf_counter()
        assert bounded(int, "1") == (True, 1)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        _bare_fork()
        bare.append(time.perf_counter() - start)
    median, baseline = statistics.median(ours), statistics.median(bare)
    print(f"bounded() on a trivial fn: median {median * 1000:.2f} ms, a bare fork {baseline * 1000:.2f} ms (of 100)")
    assert median < 2 * baseline + 0.001


# --- network filesystems ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fstype", "network"),
    [
        ("nfs", True),
        ("nfs4", True),
        ("NFS4", True),
        ("cifs", True),
        ("smb3", True),
        ("glusterfs", True),
        ("fuse.glusterfs", True),
        ("ceph", True),
        ("fuse.sshfs", True),
        ("fuse.anything", True),
        ("9p", True),
        ("sshfs", True),
        ("davfs", True),
        ("ocfs2", True),
        ("gfs2", True),
        ("ext4", False),
        ("xfs", False),
        ("btrfs", False),
        ("tmpfs", False),
        ("", False),
        (None, False),
    ],
)
def test_is_network_fstype(fstype, network):
    assert is_network_fstype(fstype) is network


# --- capabilities without writing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fstype", "options", "expected"),
    [
        ("ext4", "rw,relatime", (True, False)),
        ("ext3", "", (False, False)),
        ("ext2", "", (False, False)),
        ("btrfs", "rw,space_cache=v2", (True, True)),
        ("tmpfs", "", (True, False)),
        ("glusterfs", "", (True, False)),
        ("fuse.glusterfs", "", (True, False)),
        ("cifs", "vers=3.1.1", (False, False)),
        ("smb3", "", (False, False)),
        ("nfs4", "rw,vers=4.2,rsize=1048576", (True, None)),
        ("nfs4", {"rw", "vers=4.2"}, (True, None)),  # MountInfo.opts is a set
        ("nfs4", "rw,vers=4,minorversion=2", (True, None)),
        ("nfs", "nfsvers=4.2", (True, None)),
        ("nfs4", "rw,vers=4.1", (False, None)),
        ("nfs4", "rw,vers=4.0", (False, None)),
        ("nfs", "rw,vers=3", (False, None)),
        ("nfs", "", (False, None)),
        ("xfs", "", (True, None)),  # no device, no mount to ask
        ("ocfs2", "", (True, None)),
        ("zfs", "", (None, None)),
        ("", "", (None, None)),
    ],
)
def test_capabilities_readonly_by_type(tmp_path, fstype, options, expected):
    before = os.listdir(tmp_path)
    result = capabilities_readonly(str(tmp_path / "missing"), fstype, None, options)
    assert (result["fallocate"], result["reflink"]) == expected
    assert os.listdir(tmp_path) == before


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: loop devices and mounts")


def _run(*cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("{} failed: {}".format(" ".join(cmd), proc.stderr.strip()))
    return proc.stdout.strip()


class _Loops:
    """Loop devices over sparse files in one temporary directory; close() undoes everything."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="flexvdi-probe-"))
        self.stack = contextlib.ExitStack()
        self.stack.callback(_run, "rm", "-rf", "--one-file-system", str(self.root))

    def device(self, name, mkfs, size_mb=300):
        image = self.root / f"{name}.img"
        with open(image, "wb") as handle:
            handle.truncate(size_mb << 20)
        device = _run("losetup", "--find", "--show", str(image))
        self.stack.callback(_run, "losetup", "-d", device)
        _run(*mkfs, device)
        return device

    def mount(self, device, name, *options):
        mount_point = self.root / name
        mount_point.mkdir()
        _run("mount", *options, device, str(mount_point))
        self.stack.callback(_run, "umount", str(mount_point))
        return str(mount_point)

    def close(self):
        self.stack.close()


FILESYSTEMS = {
    # name: (mkfs, fstype, expected (fallocate, reflink) of the writing measure)
    "ext4": (["mkfs.ext4", "-q", "-F"], "ext4", (True, False)),
    "xfs-reflink": (["mkfs.xfs", "-q", "-f", "-m", "reflink=1"], "xfs", (True, True)),
    "xfs-noreflink": (["mkfs.xfs", "-q", "-f", "-m", "reflink=0"], "xfs", (True, False)),
    "btrfs": (["mkfs.btrfs", "-q", "-f"], "btrfs", (True, True)),
}


@pytest.fixture(scope="module")
def mounted():
    """{name: (mount point, device, fstype)} for FILESYSTEMS, mounted once for the module."""
    _require_root()
    loops = _Loops()
    try:
        found = {}
        for name, (mkfs, fstype, _expected) in FILESYSTEMS.items():
            device = loops.device(name, mkfs)
            found[name] = (loops.mount(device, name), device, fstype)
        yield found
    finally:
        loops.close()


def _mountinfo_options(mount_point):
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _sep, right = line.partition(" - ")
            if left.split()[4] == mount_point:
                return left.split()[5] + "," + right.split()[2]
    raise AssertionError(f"{mount_point} is not in mountinfo")


@pytest.mark.parametrize("name", sorted(FILESYSTEMS))
@pytest.mark.parametrize("source", ["device", "none"], ids=["superblock", "no-device"])
def test_capabilities_readonly_agrees_with_the_writing_measure(mounted, name, source):
    mount_point, device, fstype = mounted[name]
    measured = capabilities(mount_point)
    assert (measured["fallocate"], measured["reflink"]) == FILESYSTEMS[name][2]
    stamp = os.stat(mount_point)
    told = capabilities_readonly(
        mount_point, fstype, device if source == "device" else None, _mountinfo_options(mount_point)
    )
    assert told["fallocate"] == measured["fallocate"]
    assert told["reflink"] is not None  # every type here answers, XFS from its superblock or its geometry
    assert told["reflink"] == measured["reflink"]
    after = os.stat(mount_point)
    assert (after.st_mtime_ns, after.st_ctime_ns) == (stamp.st_mtime_ns, stamp.st_ctime_ns)


@pytest.mark.parametrize(
    ("name", "mkfs", "fstype", "reflink"),
    [
        ("xfs-v4", ["mkfs.xfs", "-q", "-f", "-m", "crc=0"], "xfs", False),  # no feature fields at all
        ("ocfs2-refcount", ["mkfs.ocfs2", "-q", "-M", "local", "--fs-features=refcount"], "ocfs2", True),
        ("ocfs2-norefcount", ["mkfs.ocfs2", "-q", "-M", "local", "--fs-features=norefcount"], "ocfs2", False),
    ],
)
def test_capabilities_readonly_reads_unmounted_superblocks(name, mkfs, fstype, reflink):
    """Superblocks this kernel cannot mount (XFS v4, ocfs2 without its stack): read, not mounted."""
    _require_root()
    if subprocess.run(["which", mkfs[0]], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"{mkfs[0]} is not installed")
    loops = _Loops()
    try:
        device = loops.device(name, mkfs)
        assert capabilities_readonly(None, fstype, device)["reflink"] is reflink
    finally:
        loops.close()


def test_capabilities_readonly_ignores_a_source_that_is_not_a_block_device(tmp_path):
    fake = tmp_path / "fake-superblock"
    fake.write_bytes(b"XFSB" + b"\xff" * 508)
    assert capabilities_readonly(None, "xfs", str(fake))["reflink"] is None


# --- volume facts -----------------------------------------------------------------------------


def _tree(root, files):
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def test_volume_facts_without_write_writes_nothing(tmp_path):
    _tree(tmp_path, {"disk.qcow2": QCOW2, "raw.img": b"\0" * 4096, "sub/deep.qcow2": QCOW2})
    before = tree_stamps(tmp_path)
    facts = volume_facts(str(tmp_path), "ext4", None, "rw,relatime")
    assert tree_stamps(tmp_path) == before
    assert facts["is_dir"] is True
    assert facts["size"] > 0 and facts["free"] >= 0
    assert (facts["fallocate"], facts["reflink"]) == (True, False)
    assert facts["images"] == images(str(tmp_path))
    assert [i["name"] for i in facts["images"]] == ["disk.qcow2", "raw.img"]


def test_volume_facts_with_write_measures(tmp_path):
    facts = volume_facts(str(tmp_path), "made-up", None, "", write=True)
    measured = capabilities(str(tmp_path))
    assert (facts["fallocate"], facts["reflink"]) == (measured["fallocate"], measured["reflink"])
    assert facts["fallocate"] is not None
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("what", ["missing", "file"])
def test_volume_facts_of_no_directory(tmp_path, what):
    path = tmp_path / what
    if what == "file":
        path.write_bytes(b"x")
    facts = volume_facts(str(path), "ext4", None, "")
    code = errno.ENOENT if what == "missing" else 0
    assert facts == {
        "errno": code,
        "is_dir": False,
        "size": None,
        "free": None,
        "fallocate": None,
        "reflink": None,
        "images": [],
    }


def test_volume_facts_through_bounded_is_the_same(tmp_path):
    _tree(tmp_path, {"a.qcow2": QCOW2, "b.raw": b"\0" * 8192})
    ok, facts = bounded(volume_facts, str(tmp_path), "xfs", None, "rw", timeout=5)
    assert ok
    direct = volume_facts(str(tmp_path), "xfs", None, "rw")
    assert {k: v for k, v in facts.items() if k != "free"} == {k: v for k, v in direct.items() if k != "free"}


def test_volume_facts_on_a_read_only_mount_still_answers(tmp_path):
    """The writing measure cannot run on a read-only mount; the read-only one still answers."""
    _require_root()
    volume = tmp_path / "ro"
    volume.mkdir()
    _run("mount", "-t", "tmpfs", "-o", "ro,size=1m", "flexvdi-probe-test", str(volume))
    try:
        assert capabilities(str(volume)) == {"fallocate": None, "reflink": None}
        facts = volume_facts(str(volume), "tmpfs", "flexvdi-probe-test", "ro")
        assert (facts["fallocate"], facts["reflink"]) == (True, False)
    finally:
        _run("umount", str(volume))


# --- images -----------------------------------------------------------------------------------

TREE = {
    "top.qcow2": QCOW2,
    "raw.img": b"\0" * 4096,
    ".hidden.qcow2": QCOW2,
    ".snapshots/old.qcow2": QCOW2,
    "sub/disk.qcow2": QCOW2,
    "sub/deeper/a.raw": b"\1" * 100,
    "sub/.hidden/x.qcow2": QCOW2,
    "/".join(["d"] * 8) + "/at-depth-8.raw": b"x",
    "/".join(["d"] * 9) + "/at-depth-9.raw": b"x",
}


@pytest.fixture
def volume(tmp_path):
    root = tmp_path / "volume"
    _tree(root, TREE)
    outside = tmp_path / "outside"
    _tree(outside, {"elsewhere.qcow2": QCOW2})
    (root / "link-to-dir").symlink_to(outside)
    (root / "link-to-file.qcow2").symlink_to(outside / "elsewhere.qcow2")
    os.mkfifo(root / "fifo")
    return str(root)


TOP = ["raw.img", "top.qcow2"]
BELOW = ["d/d/d/d/d/d/d/d/at-depth-8.raw", "raw.img", "sub/deeper/a.raw", "sub/disk.qcow2", "top.qcow2"]


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({}, TOP),
        ({"recursive": False}, TOP),
        ({"recursive": True}, BELOW),
        ({"recursive": True, "limit": 2}, BELOW[:2]),
        ({"limit": 1}, TOP[:1]),
        ({"recursive": True, "limit": 0}, []),
    ],
)
def test_images(volume, kwargs, names):
    found = images(volume, **kwargs)
    assert [i["name"] for i in found] == names
    by_name = {i["name"]: i for i in found}
    if "sub/disk.qcow2" in by_name:
        assert by_name["sub/disk.qcow2"]["format"] == "qcow2"
        assert (by_name["sub/deeper/a.raw"]["size"], by_name["sub/deeper/a.raw"]["format"]) == (100, "raw")
    if "top.qcow2" in by_name:
        assert by_name["top.qcow2"]["format"] == "qcow2" and by_name["top.qcow2"]["size"] == len(QCOW2)


def test_count_images_sees_below_the_top(volume):
    assert count_images(volume) == (len(BELOW), BELOW)
    assert count_images(volume, names=2) == (len(BELOW), BELOW[:2])


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, (0, [])),
        ({".hidden": b"x", ".dir/a.qcow2": b"x"}, (0, [])),
        ({"sub/disk.qcow2": QCOW2}, (1, ["sub/disk.qcow2"])),
        ({"a/b/c.raw": b"x", "z.raw": b"x"}, (2, ["a/b/c.raw", "z.raw"])),
    ],
)
def test_count_images_table(tmp_path, files, expected):
    _tree(tmp_path, files)
    assert count_images(str(tmp_path)) == expected


def test_count_images_of_a_missing_path(tmp_path):
    assert count_images(str(tmp_path / "missing")) == (0, [])


def test_the_walk_is_bounded_in_entries(tmp_path, monkeypatch):
    _tree(tmp_path, {f"dir{i}/disk{j}.raw": b"x" for i in range(10) for j in range(10)})
    assert count_images(str(tmp_path))[0] == 100
    monkeypatch.setattr(_probe, "MAX_ENTRIES", 25)
    assert count_images(str(tmp_path))[0] < 25


def test_the_walk_stays_on_its_filesystem(tmp_path):
    _require_root()
    _tree(tmp_path, {"disk.raw": b"x"})
    below = tmp_path / "other"
    below.mkdir()
    _run("mount", "-t", "tmpfs", "-o", "size=1m", "flexvdi-probe-test", str(below))
    try:
        (below / "not-ours.qcow2").write_bytes(QCOW2)
        assert count_images(str(tmp_path)) == (1, ["disk.raw"])
    finally:
        _run("umount", str(below))
