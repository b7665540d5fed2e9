# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""In-process probes of a volume: space, capabilities, images, open files. Private.

Nothing here execs a program: statvfs, the superblock of the device, a scratch file for
fallocate(2) and the FICLONE ioctl (only where writing is allowed), scandir, and /proc. That
keeps the no-op path of every module fast. What may block on a dead server runs under
``bounded()``: a forked child (no exec) the caller stops waiting for.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import math
import os
import select
import signal
import stat
import struct
import time

FICLONE = 0x40049409
QCOW2_MAGIC = b"QFI\xfb"
PROBE_PREFIX = ".flexvdi-probe-"

# images(recursive=True) and count_images(): how deep and how wide the walk may go.
MAX_DEPTH = 8
MAX_ENTRIES = 100000

# Filesystems whose probes may block forever when a server or another node is gone: stat,
# statvfs and even access(2) of a hard NFS mount wait for the server; a FUSE daemon that hangs
# hangs them too; ocfs2 and gfs2 wait on their lock manager (DLM) when a node dies.
NETWORK_FSTYPES = frozenset(
    (
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "glusterfs",
        "fuse.glusterfs",
        "ceph",
        "fuse.ceph",
        "9p",
        "sshfs",
        "fuse.sshfs",
        "davfs",
        "fuse.davfs",
        "ocfs2",
        "gfs2",
        "lustre",
        "afs",
        "fuse",
        "fuseblk",
    )
)

# capabilities_readonly(): what a filesystem type says without asking it, as (fallocate, reflink).
_FSTYPE_CAPABILITIES = {
    "ext2": (False, False),
    "ext3": (False, False),
    "ext4": (True, False),
    "btrfs": (True, True),
    "tmpfs": (True, False),
    "glusterfs": (True, False),
    "fuse.glusterfs": (True, False),
    "cifs": (False, False),
    "smb3": (False, False),
}

XFS_MAGIC = b"XFSB"
XFS_SB_VERSION_NUMBITS = 0x000F
XFS_SB_VERSION_5 = 5
XFS_SB_FEATURES_RO_COMPAT = 212  # offset of sb_features_ro_compat (big-endian u32)
XFS_SB_FEAT_RO_COMPAT_REFLINK = 1 << 2
XFS_IOC_FSGEOMETRY_V1 = 0x80705864  # _IOR('X', 100, struct xfs_fsop_geom_v1): every kernel has it
XFS_FSOP_GEOM_FLAGS_REFLINK = 0x100000
OCFS2_SIGNATURE = b"OCFSV2"
OCFS2_FEATURE_INCOMPAT = 0xE0  # s_feature_incompat (little-endian u32) in the superblock inode
OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE = 0x1000

_libc = None


def _fallocate_fn():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(_libc, "fallocate64", None) or _libc.fallocate
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    fn.restype = ctypes.c_int
    return fn


# --- running a probe that may hang ---------------------------------------------------------


def bounded(fn, *args, timeout=10.0):
    """Run ``fn(*args)`` in a forked child; ``(True, value)``, or ``(False, reason)`` after ``timeout`` s.

    Why: on a hard NFS mount (the default) whose server is gone, stat, statvfs, scandir and
    access(2) block forever, in uninterruptible sleep; a cluster filesystem (ocfs2, gfs2)
    does the same while its lock manager waits for a dead node. Such a call would hang the
    whole Ansible run. Here only the child blocks: the parent stops waiting, kills it and
    goes on with ``(False, "timeout")``.

    The child (fork, no exec) first points fds 0, 1 and 2 at /dev/null and closes every other
    inherited descriptor: a child stuck in the kernel may never die, and it must neither hold
    the module's stdout (Ansible reads it to EOF) nor keep an inherited flock (the registry
    lock) held. It sends the JSON-encoded return value through a pipe and ``os._exit``s, so
    ``value`` comes back as JSON would give it (tuples as lists). An exception in ``fn`` gives
    ``(False, "<ExceptionType>: <message>")``. The parent waits with poll(2) up to
    ``timeout``, then SIGKILLs the child and reaps it with WNOHANG only: a blocking waitpid
    would hang on a child that cannot die. Cost: one fork, 1 to 5 ms (it grows with the memory
    of this process, whose page tables the fork copies).
    """
    deadline = time.monotonic() + timeout
    rfd, wfd = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(rfd)
        os.close(wfd)
        return False, "%s: %s" % (type(exc).__name__, exc)
    if pid == 0:
        _run_child(wfd, fn, args)  # never returns
    os.close(wfd)
    try:
        data, complete = _read_until(rfd, deadline)
    except BaseException:  # interrupted (a signal, KeyboardInterrupt): leave no child behind
        _kill(pid)
        raise
    finally:
        os.close(rfd)
    if not complete:
        _kill(pid)
        return False, "timeout"
    status = _reap(pid, time.monotonic() + 0.5)
    if status is None:
        _kill(pid)  # it sent everything and closed the pipe: only its exit is slow
    if not data:
        if status is not None and os.WIFSIGNALED(status):
            return False, "the probe died of signal %d" % os.WTERMSIG(status)
        return False, "the probe exited without a result"
    try:
        ok, value = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        return False, "%s: %s" % (type(exc).__name__, exc)
    return bool(ok), value


def _run_child(wfd, fn, args):
    """The child of bounded(): detach, run, send, exit. Never returns."""
    try:
        _detach(keep=wfd)
        try:
            payload = json.dumps([True, fn(*args)])
        except BaseException as exc:
            payload = json.dumps([False, "%s: %s" % (type(exc).__name__, exc)])
        data = payload.encode("utf-8")
        while data:
            data = data[os.write(wfd, data) :]
    finally:
        os._exit(0)


def _detach(keep):
    """In a child: stdio from/to /dev/null, every other inherited fd but ``keep`` closed."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    if null > 2:
        os.close(null)
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = []
    for fd in fds:
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def _read_until(rfd, deadline):
    """Everything the child sends, and whether it closed the pipe before ``deadline``."""
    poller = select.poll()
    poller.register(rfd, select.POLLIN)
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), False
        if not poller.poll(math.ceil(left * 1000)):
            continue
        chunk = os.read(rfd, 65536)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)


def _reap(pid, deadline):
    """waitpid(WNOHANG) until ``pid`` is reaped (its status) or ``deadline`` passes (None)."""
    delay = 0.0001
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def _kill(pid):
    """SIGKILL the child and reap it if it dies soon; one stuck in the kernel is left to init."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid, time.monotonic() + 0.5)


# What a network filesystem answers when its server cannot be reached without waiting out a
# timeout: a soft NFS mount (EIO, ETIMEDOUT), CIFS once its reconnect fails (EHOSTDOWN...), a
# FUSE client whose servers are all gone (Gluster: ENOTCONN while the client still runs).
SERVER_ERRNOS = frozenset(
    (
        errno.EIO,
        errno.ETIMEDOUT,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ENOTCONN,
    )
)


def statfs_errno(path):
    """Ask the filesystem holding ``path`` a question its client cannot answer from a cache.

    statvfs(2) goes to the server every time: NFS sends FSSTAT (v3) or a GETATTR of the
    filesystem attributes (v4), CIFS an SMB2 QUERY_INFO, FUSE a FUSE_STATFS to its daemon (for
    Gluster, on to the bricks). stat and lstat of a directory do not: NFS answers them from its
    attribute cache (acdirmin 30 s to acdirmax 60 s by default) and FUSE for ``attr_timeout``,
    so a dead server passes them for up to a minute. Returns 0, or the errno it failed with
    (ENOENT: the path is not there; that is no answer about a server).
    """
    try:
        os.statvfs(path)
    except OSError as exc:
        return exc.errno
    return 0


def fuse_client_alive(mount_point):
    """Whether the FUSE daemon serving ``mount_point`` still runs in this mount namespace.

    Told apart from /proc alone: a process of this mount namespace whose last argument is the
    mount point (glusterfs, sshfs and bindfs are started that way). FUSE answers ENOTCONN both
    when its daemon died (the mount is stale) and when the daemon lives but none of its servers
    answers (Gluster with every brick gone): only the first is mended by mounting again.
    """
    target = os.path.normpath(mount_point)
    try:
        mine = os.stat("/proc/self/ns/mnt").st_ino
    except OSError:
        mine = None
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as handle:
                argv = handle.read().split(b"\0")
            if argv and argv[-1] == b"":
                argv.pop()
            if not argv or os.path.normpath(os.fsdecode(argv[-1])) != target:
                continue
            if mine is not None and os.stat("/proc/%s/ns/mnt" % name).st_ino != mine:
                continue
        except OSError:
            continue
        return True
    return False


def is_network_fstype(fstype):
    """Whether probes of a filesystem of this type may block on a server or another node."""
    fstype = (fstype or "").lower()
    return fstype in NETWORK_FSTYPES or fstype.startswith("fuse.")


# --- space and capabilities ----------------------------------------------------------------


def space(path):
    """Size and free bytes (free for unprivileged users, as df shows) of the fs at path."""
    st = os.statvfs(path)
    return {"size": st.f_blocks * st.f_frsize, "free": st.f_bavail * st.f_frsize}


def capabilities(path):
    """Whether the fs at ``path`` supports real fallocate(2) and reflinks (FICLONE).

    Measured on two scratch files that are always removed. glibc's posix_fallocate would
    silently write zeros where the fs has no fallocate, so the syscall is called directly.
    ``None`` means the probe itself could not run (read-only, no permission). This writes
    into the volume: check mode and read-only views use ``capabilities_readonly()``.
    """
    result = {"fallocate": None, "reflink": None}
    src = dst = None
    names = []
    try:
        names = [os.path.join(path, "%s%d-%d" % (PROBE_PREFIX, os.getpid(), i)) for i in range(2)]
        src = os.open(names[0], os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(src, b"\0" * 4096)
        ret = _fallocate_fn()(src, 0, 4096, 1 << 20)
        result["fallocate"] = ret == 0
        dst = os.open(names[1], os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.ioctl(dst, FICLONE, src)
            result["reflink"] = True
        except OSError as exc:
            result["reflink"] = (
                False if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL) else None
            )
    except OSError:
        pass
    finally:
        for fd in (src, dst):
            if fd is not None:
                os.close(fd)
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(name)
    return result


def capabilities_readonly(path, fstype, source=None, options=""):
    """``capabilities()`` without writing anything: from the filesystem type and its superblock.

    ext4, btrfs, tmpfs, gluster and CIFS answer by type. XFS reflink is a feature bit of the
    superblock, read from ``source`` when it is a readable block device, else asked of the
    mounted filesystem at ``path`` (XFS_IOC_FSGEOMETRY, read-only); ocfs2's refcount-tree
    feature (its reflink) likewise from ``source``. NFS allocates only from version 4.2 on
    (``vers=4.2`` or ``minorversion=2`` in ``options``, a string or a set of options); whether
    it clones depends on the server's filesystem. ``None``: this cannot be told without trying.
    """
    fstype = (fstype or "").lower()
    if fstype in _FSTYPE_CAPABILITIES:
        fallocate, reflink = _FSTYPE_CAPABILITIES[fstype]
    elif fstype == "xfs":
        fallocate, reflink = True, _xfs_reflink(source, path)
    elif fstype in ("nfs", "nfs4"):
        fallocate, reflink = _nfs_minor_version(options) >= 2, None
    elif fstype == "ocfs2":
        fallocate, reflink = True, _ocfs2_reflink(source)
    else:
        fallocate = reflink = None
    return {"fallocate": fallocate, "reflink": reflink}


def _option_list(options):
    if isinstance(options, str):
        return [o.strip() for o in options.split(",")]
    return [str(o).strip() for o in options or ()]


def _nfs_minor_version(options):
    """The NFS minor version the mount options say (vers=4.2 -> 2, minorversion=2 -> 2), or 0."""
    minor = 0
    for option in _option_list(options):
        key, _sep, value = option.partition("=")
        if key in ("vers", "nfsvers") and value.startswith("4."):
            minor = max(minor, _int(value[2:]))
        elif key == "minorversion":
            minor = max(minor, _int(value))
    return minor


def _int(text):
    try:
        return int(text)
    except ValueError:
        return 0


def _read_device(source, offset, size):
    """``size`` bytes at ``offset`` of the block device ``source``, or None (not one, unreadable)."""
    if not source or not source.startswith("/"):
        return None
    try:
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISBLK(os.fstat(fd).st_mode):
            return None
        data = os.pread(fd, size, offset)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) == size else None


def _xfs_reflink(source, path):
    sb = _read_device(source, 0, 512)
    if sb is not None and sb[:4] == XFS_MAGIC:
        (version,) = struct.unpack_from(">H", sb, 100)
        if version & XFS_SB_VERSION_NUMBITS < XFS_SB_VERSION_5:
            return False  # v4 superblocks have no feature fields, hence no reflink
        (ro_compat,) = struct.unpack_from(">I", sb, XFS_SB_FEATURES_RO_COMPAT)
        return bool(ro_compat & XFS_SB_FEAT_RO_COMPAT_REFLINK)
    return _xfs_geometry_reflink(path)


def _xfs_geometry_reflink(path):
    """The reflink flag of XFS_IOC_FSGEOMETRY_V1 on the directory ``path``, or None."""
    if not path:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        geometry = fcntl.ioctl(fd, XFS_IOC_FSGEOMETRY_V1, bytes(112))
    except OSError:
        return None
    finally:
        os.close(fd)
    (flags,) = struct.unpack_from("=I", geometry, 92)
    return bool(flags & XFS_FSOP_GEOM_FLAGS_REFLINK)


def _ocfs2_reflink(source):
    """Whether the ocfs2 on ``source`` has the refcount tree feature, or None."""
    for block_size in (512, 1024, 2048, 4096):  # its superblock is block 2
        sb = _read_device(source, 2 * block_size, 256)
        if sb is None:
            return None
        if sb[: len(OCFS2_SIGNATURE)] == OCFS2_SIGNATURE:
            (incompat,) = struct.unpack_from("<I", sb, OCFS2_FEATURE_INCOMPAT)
            return bool(incompat & OCFS2_FEATURE_INCOMPAT_REFCOUNT_TREE)
    return None


def volume_facts(path, fstype, source, options, write=False):
    """Everything the details view needs from inside a mount, in one call (to run under bounded()).

    ``{"errno", "is_dir", "size", "free", "fallocate", "reflink", "images"}``: ``images`` as
    ``images(path)`` gives them. The first question is statvfs (``space()``), which the server
    must answer (see ``statfs_errno()``): when it fails, ``errno`` says why and nothing else is
    asked. With ``write`` the capabilities are measured on scratch files (``capabilities()``);
    without it nothing is written (``capabilities_readonly()``).
    """
    facts = {"errno": 0, "is_dir": False, "size": None, "free": None, "fallocate": None, "reflink": None}
    facts["images"] = []
    try:
        facts.update(space(path))
    except OSError as exc:
        facts.update(errno=exc.errno, size=None, free=None)
        return facts
    facts["is_dir"] = os.path.isdir(path)
    if not facts["is_dir"]:
        facts.update(size=None, free=None)
        return facts
    facts.update(capabilities(path) if write else capabilities_readonly(path, fstype, source, options))
    facts["images"] = images(path)
    return facts


# --- images and open files -----------------------------------------------------------------


def image_format(path):
    try:
        with open(path, "rb") as handle:
            return "qcow2" if handle.read(4) == QCOW2_MAGIC else "raw"
    except OSError:
        return "unknown"


def _regular_files(path, recursive):
    """(name relative to ``path``, full path, lstat) of each non-hidden regular file.

    Top level only, or with ``recursive`` the whole tree below: hidden entries skipped,
    symlinks not followed, other filesystems mounted below not entered, at most
    ``MAX_DEPTH`` directories deep and ``MAX_ENTRIES`` entries looked at.
    """
    found = []
    budget = MAX_ENTRIES if recursive else None
    try:
        device = os.stat(path).st_dev if recursive else None
    except OSError:
        return found
    pending = [(path, "", 0)]
    while pending:
        directory, prefix, depth = pending.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            if budget is not None:
                budget -= 1
                if budget < 0:
                    return found
            if entry.name.startswith("."):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found.append((prefix + entry.name, entry.path, st))
            elif recursive and stat.S_ISDIR(st.st_mode) and depth < MAX_DEPTH and st.st_dev == device:
                pending.append((entry.path, prefix + entry.name + "/", depth + 1))
    return found


def images(path, recursive=False, limit=None):
    """Guest images of a volume: name, size, allocated bytes, format; sorted by name.

    At the top of the volume, or with ``recursive`` below it too (names relative to ``path``,
    ``sub/disk.qcow2``; bounded as ``_regular_files()`` says). ``limit``: the first that many.
    """
    files = sorted(_regular_files(path, recursive), key=lambda item: item[0])
    if limit is not None:
        files = files[:limit]
    return [
        {"name": name, "size": st.st_size, "allocated": st.st_blocks * 512, "format": image_format(full)}
        for name, full, st in files
    ]


def count_images(path, names=5):
    """For the removal guard: ``(count, first names)`` of the guest images at and below ``path``.

    Names are relative to ``path`` (``sub/disk.qcow2``), the first ``names`` of them by name.
    Nothing is opened; past ``MAX_DEPTH`` or ``MAX_ENTRIES`` the count is a lower bound.
    """
    found = sorted(name for name, _full, _st in _regular_files(path, recursive=True))
    return len(found), found[:names]


def open_files_below(path, limit=20):
    """Processes holding files at or below ``path`` open, from /proc: [(pid, comm, file)]."""
    prefix = path.rstrip("/") + "/"
    found = []
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target == path or target.startswith(prefix):
                try:
                    with open(f"/proc/{pid}/comm") as handle:
                        comm = handle.read().strip()
                except OSError:
                    comm = "?"
                found.append((int(pid), comm, target))
                if len(found) >= limit:
                    return found
    return found
