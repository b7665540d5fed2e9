# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hypervisor's qemu user and what it can do on a volume. Private to the collection."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass

from ._errors import StorageError
from ._probe import bounded

CANDIDATES = ("libvirt-qemu", "qemu")


@dataclass
class QemuUser:
    name: str
    uid: int
    gid: int
    groups: tuple
    group_name: str


def find(name=None, required=True):
    """The qemu user: ``name`` when given (the qemu_user option), else the first candidate."""
    for candidate in [name] if name else CANDIDATES:
        try:
            pw = pwd.getpwnam(candidate)
        except KeyError:
            continue
        groups = tuple(sorted(set(os.getgrouplist(pw.pw_name, pw.pw_gid))))
        try:
            group_name = grp.getgrgid(pw.pw_gid).gr_name
        except KeyError:
            group_name = str(pw.pw_gid)
        return QemuUser(pw.pw_name, pw.pw_uid, pw.pw_gid, groups, group_name)
    if not required:
        return None
    if name:
        raise StorageError(f"qemu_user {name} does not exist on this host: create it or fix the qemu_user option")
    raise StorageError(
        "no qemu user found on this host (tried {}): install the hypervisor, or name its user "
        "with the qemu_user option".format(", ".join(CANDIDATES))
    )


# The words of a path blocked by one of its parent directories (not by its own mode or owner).
REACH = "cannot reach"


def access(path, user, timeout=10.0):
    """Whether ``user`` (a QemuUser) can use the directory ``path``: ``(True, None)`` or ``(False, message)``;
    ``(None, "timeout")`` when the filesystem did not answer within ``timeout`` seconds, and
    ``(None, message)`` when the question could not be asked.

    Asked of the kernel, not inferred from modes, and nothing is written: a forked child (no
    exec, under ``bounded()``: stdio on /dev/null, at most ``timeout`` seconds, so a dead NFS
    server cannot hang the run) takes the user's groups, gid and uid, so that its REAL uid is
    the qemu user's and access(2) answers for it, ACLs, read-only mounts and root_squash
    included. Every directory on the way to ``path`` (symlinks resolved) must let it search
    (x), and ``path`` itself must let it read, write and search; the message names the first
    that does not, with its mode and owner, and the fix.
    """
    ok, result = bounded(_access_as, path, user, timeout=timeout)
    if not ok:
        if result == "timeout":
            return None, "timeout"
        return None, "could not verify that the qemu user {} can write {}: {}".format(user.name, path, result)
    return bool(result[0]), result[1]


def _access_as(path, user):
    """In the child of access(): [True, None] or [False, message]."""
    path = os.path.abspath(path)
    target = os.path.realpath(path)  # as root: the qemu user may not be allowed to resolve it
    shown = path if target == path else "{} (that is {})".format(path, target)
    os.setgroups(list(user.groups))
    os.setgid(user.gid)
    os.setuid(user.uid)
    for directory in _ancestors(target):
        if os.access(directory, os.X_OK):
            continue
        if not os.path.lexists(directory):  # its parent is searchable: this is ENOENT
            return [False, "{} does not exist ({} is missing)".format(shown, directory)]
        fix = "give it o+x, or x to the qemu group {}".format(user.group_name)
        return [
            False,
            ("the qemu user {} " + REACH + " {}: {} {} blocks it; {}").format(
                user.name, shown, directory, _describe(directory), fix
            ),
        ]
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return [False, "{} does not exist".format(shown)]
    if not stat.S_ISDIR(st.st_mode):
        return [False, "{} is not a directory".format(shown)]
    if os.access(target, os.R_OK | os.W_OK | os.X_OK):
        return [True, None]
    if not os.access(target, os.W_OK) and os.statvfs(target).f_flag & os.ST_RDONLY:
        return [
            False,
            "the qemu user {} cannot write {}: it is on a read-only mount; mount it read-write".format(
                user.name, shown
            ),
        ]
    wanted = ((os.R_OK, "read"), (os.W_OK, "write"), (os.X_OK, "search"))
    missing = " or ".join(word for flag, word in wanted if not os.access(target, flag))
    fix = "guests will not start; set owner_qemu: true or fix its permissions"
    return [False, "the qemu user {} cannot {} {} {}: {}".format(user.name, missing, shown, _describe(target, st), fix)]


def _ancestors(path):
    """The directories above ``path``, from / down: /srv/a/b -> [/, /srv, /srv/a]."""
    found = []
    head = os.path.dirname(path)
    while True:
        found.insert(0, head)
        parent = os.path.dirname(head)
        if parent == head:
            return found
        head = parent


def _describe(path, st=None):
    """The mode and owner of ``path``: ``(mode 0700, owner root:root)``."""
    if st is None:
        try:
            st = os.stat(path)
        except OSError as exc:
            return "({})".format(exc.strerror)
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return "(mode {:04o}, owner {}:{})".format(stat.S_IMODE(st.st_mode), owner, group)


def device_access(device, user, timeout=10.0):
    """Whether ``user`` (a QemuUser) can open the block device ``device`` for reading and writing.

    ``(True, None)`` or ``(False, message)``. As ``access()``: a forked child under
    ``bounded()`` takes the user's groups, gid and uid and really opens the node (O_RDWR,
    nothing read or written), so the answer is the kernel's: modes, ACLs and a read-only
    device included. A disk that does not answer within ``timeout`` seconds is a failure.
    """
    ok, result = bounded(_open_as, device, user, timeout=timeout)
    if not ok:
        reason = "no answer within %gs" % timeout if result == "timeout" else result
        return False, "could not verify that the qemu user {} can open {}: {}".format(user.name, device, reason)
    return bool(result[0]), result[1]


def _open_as(device, user):
    """In the child of device_access(): [True, None] or [False, message]."""
    os.setgroups(list(user.groups))
    os.setgid(user.gid)
    os.setuid(user.uid)
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        return [
            False,
            "the qemu user {} cannot open {} {}: {}".format(user.name, device, _describe(device), exc.strerror),
        ]
    os.close(fd)
    return [True, None]
