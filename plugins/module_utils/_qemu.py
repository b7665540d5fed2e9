# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hypervisor's qemu user and what it can do on a volume. Private to the collection."""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from ._errors import StorageError

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


def can_write(path, user):
    """Whether ``user`` can list ``path`` and create and remove a file in it.

    Verified for real, not inferred from modes: a child process (fork, no exec) drops
    to the user's uid, gid and groups and tries it, so ACLs, root_squash, read-only
    mounts and SELinux-free MAC all give the true answer.
    """
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 1
        try:
            os.setgroups(list(user.groups))
            os.setgid(user.gid)
            os.setuid(user.uid)
            os.listdir(path)
            name = os.path.join(path, ".flexvdi-qemu-check-%d" % os.getpid())
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            os.unlink(name)
            code = 0
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
