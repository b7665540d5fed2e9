# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one checker of what users give: names, paths, fstab fields, ports. Private.

Everything that ends up in fstab, in a path or on a command line passes here first, so bad
input is refused before anything is tried, with the option named and the fix said, instead
of failing later in mount(8)'s words (or, worse, adding a line to fstab).
"""

from __future__ import annotations

import os
import platform
import re

from ._errors import StorageError
from ._mounts import normpath

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FSTYPE_RE = re.compile(r"^[a-z0-9][a-z0-9_+-]*(\.[a-z0-9][a-z0-9_+-]*)?$")
# Characters fstab cannot hold even escaped (our renderer escapes space, tab, newline and
# backslash in spec and file; a newline in a path is refused all the same: no tool expects it).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# The system's own directories: never a volume, a root or a mount point. TREES are refused
# with everything below them; EXACT only as themselves (a subdirectory such as /home/images
# or /srv/images is what admins use).
TREES = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/lib/apt",
    "/var/lib/dpkg",
    "/var/lib/systemd",
    "/var/log",
    "/var/cache",
    "/var/spool",
    "/var/mail",
    "/var/backups",
)
EXACT = (
    "/",
    "/home",
    "/lost+found",
    "/media",
    "/mnt",
    "/opt",
    "/root",
    "/snap",
    "/srv",
    "/tmp",
    "/var",
    "/var/lib",
    "/var/local",
    "/var/lock",
    "/var/opt",
    "/var/run",
    "/var/tmp",
    "/var/lib/flexvdi",
    "/var/lib/flexvdi/volumes",
    "/var/lib/flexvdi/media",
    "/var/lib/libvirt",
)
# Filesystem types mount(8) may be asked for that need neither /proc/filesystems nor a helper
# to be present yet (a module not loaded, a package the run installs later).
KNOWN_FSTYPES = frozenset(
    (
        "auto",
        "none",
        "bind",
        "ext2",
        "ext3",
        "ext4",
        "xfs",
        "btrfs",
        "vfat",
        "exfat",
        "ntfs",
        "ntfs3",
        "f2fs",
        "jfs",
        "reiserfs",
        "zfs",
        "squashfs",
        "iso9660",
        "udf",
        "tmpfs",
        "ramfs",
        "overlay",
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "ocfs2",
        "gfs2",
        "glusterfs",
        "ceph",
        "fuse",
        "fuseblk",
        "9p",
        "virtiofs",
        "davfs",
        "sshfs",
    )
)
SBIN_DIRS = ("/sbin", "/usr/sbin", "/usr/local/sbin", "/bin", "/usr/bin")


def check_name(value, option):
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise StorageError(
            f"{option} {value!r} is not a valid name: use letters, digits, '.', '_' and '-' (at most 64, "
            "starting with a letter or digit); it becomes part of paths"
        )
    return value


def _system_dir(path):
    if path in EXACT:
        return path
    for tree in TREES:
        if path == tree or path.startswith(tree + "/"):
            return tree
    return None


def check_path(value, what, option="mount_point", resolve=True):
    """An absolute path that is not one of the system's own directories; returns it normalised.

    The path and, when it exists, what it resolves to (a symlink to /etc is /etc) are checked;
    ``resolve=False`` skips the second for a path on a network filesystem, where even lstat
    may hang on a dead server (the liveness probe decides about those).
    """
    if not isinstance(value, str) or not value.startswith("/"):
        raise StorageError(f"{what}: {option} {value!r} must be an absolute path: fix {option}")
    if _CONTROL.search(value):
        raise StorageError(f"{what}: {option} {value!r} contains a control character (newline?): fix {option}")
    path = normpath(value)
    resolved = os.path.realpath(path) if resolve and os.path.lexists(path) else path
    for candidate in (path, resolved):
        system = _system_dir(candidate)
        if system is not None:
            resolved = "" if candidate == path else f" (it resolves to {candidate})"
            tree = "" if system == candidate else f", which is inside {system}"
            raise StorageError(
                f"{what}: {option} {value}{resolved} is a directory of the system itself{tree}: "
                f"volumes, roots and mount points must be directories of their own, such as "
                f"/home/images or /srv/images/<name>: fix {option}"
            )
    return path


def known_fstype(fstype):
    """Whether this host, or mount(8) once the usual packages are in, knows ``fstype``."""
    if fstype in KNOWN_FSTYPES or fstype.startswith("fuse."):
        return True
    try:
        with open("/proc/filesystems", encoding="utf-8") as handle:
            if any(line.split()[-1] == fstype for line in handle if line.split()):
                return True
    except OSError:
        pass
    if any(os.path.exists(os.path.join(d, "mount." + fstype)) for d in SBIN_DIRS):
        return True
    import glob  # only for a filesystem type this host does not know yet

    pattern = "/lib/modules/%s/kernel/fs/**/%s.ko*" % (platform.release(), fstype)
    return bool(glob.glob(pattern, recursive=True))


def check_mount_fields(what, src=None, fstype=None, opts=None, opts_option="opts"):
    """src, fstype and opts as they will be written to fstab and given to mount(8).

    ``opts_option`` is the name of the module option the mount options come from.

    Paths (src) may hold spaces, which fstab escapes; fstype must be one filesystem type name
    this host knows; each option of opts must be free of whitespace, quotes and '#'.
    """
    if src is not None:
        if not src or _CONTROL.search(src):
            raise StorageError(f"{what}: src {src!r} is empty or contains a control character (newline?): fix src")
        if src.lstrip().startswith("#") or src != src.strip():
            raise StorageError(f"{what}: src {src!r} starts or ends with a blank or starts with '#': fix src")
    if fstype is not None:
        if not FSTYPE_RE.match(fstype):
            raise StorageError(
                f"{what}: fstype {fstype!r} is not one filesystem type name (such as ext4, xfs, nfs4, cifs, "
                "fuse.sshfs): fix fstype"
            )
        if not known_fstype(fstype):
            raise StorageError(
                f"{what}: fstype {fstype} is unknown on this host (not in /proc/filesystems, no mount.{fstype} "
                "helper, no kernel module): fix fstype, or install the package that provides it"
            )
    if opts is not None:
        for option in opts.split(","):
            bad = re.search(r"[\s#\"'\\]|[\x00-\x1f\x7f]", option)
            if bad:
                raise StorageError(
                    f"{what}: {opts_option} {opts!r}: option {option!r} contains {bad.group(0)!r}; mount options are "
                    f"comma-separated, without blanks, quotes, '#' or newlines: fix {opts_option}"
                )


def check_port(port, what, option="port"):
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise StorageError(f"{what}: {option} {port!r} is not a TCP port (1-65535): fix {option}")
    return port
