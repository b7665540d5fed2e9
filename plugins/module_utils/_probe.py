# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""In-process probes of a volume: space, capabilities, images, open files. Private.

Nothing here starts a process: statvfs, a scratch file for fallocate(2) and the FICLONE
ioctl, scandir, and /proc. That keeps the no-op path of every module fast.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import stat

FICLONE = 0x40049409
QCOW2_MAGIC = b"QFI\xfb"
PROBE_PREFIX = ".flexvdi-probe-"

_libc = None


def _fallocate_fn():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(_libc, "fallocate64", None) or _libc.fallocate
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    fn.restype = ctypes.c_int
    return fn


def space(path):
    """Size and free bytes (free for unprivileged users, as df shows) of the fs at path."""
    st = os.statvfs(path)
    return {"size": st.f_blocks * st.f_frsize, "free": st.f_bavail * st.f_frsize}


def capabilities(path):
    """Whether the fs at ``path`` supports real fallocate(2) and reflinks (FICLONE).

    Measured on two scratch files that are always removed. glibc's posix_fallocate would
    silently write zeros where the fs has no fallocate, so the syscall is called directly.
    ``None`` means the probe itself could not run (read-only, no permission).
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


def image_format(path):
    try:
        with open(path, "rb") as handle:
            return "qcow2" if handle.read(4) == QCOW2_MAGIC else "raw"
    except OSError:
        return "unknown"


def images(path):
    """Guest images at the top of a volume: name, size, allocated bytes, format; sorted."""
    found = []
    try:
        entries = list(os.scandir(path))
    except OSError:
        return found
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        found.append(
            {
                "name": entry.name,
                "size": st.st_size,
                "allocated": st.st_blocks * 512,
                "format": image_format(entry.path),
            }
        )
    return sorted(found, key=lambda item: item["name"])


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


def is_block_device(path):
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def resolve_device(spec):
    """The /dev node a block device spec names (path, UUID=, LABEL=, PARTUUID=), or None."""
    for tag, folder in (("UUID=", "by-uuid"), ("LABEL=", "by-label"), ("PARTUUID=", "by-partuuid")):
        if spec.startswith(tag):
            spec = os.path.join("/dev/disk", folder, spec[len(tag) :].strip('"'))
            break
    if spec.startswith("/") and os.path.exists(spec):
        return os.path.realpath(spec)
    return None
