"""What the qemu user can do on a volume, asked as the real qemu user, writing nothing.

Root only: the probe drops to the user (libvirt-qemu, created by `make setup`) as the modules
do. Each case builds its directories under a fresh 0755 directory in /tmp (pytest's own
tmp_path sits below a 0700 directory the qemu user cannot cross).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile

import pytest
from _stamps import tree_stamps

from ansible_collections.flexvdi.storage.plugins.module_utils._qemu import access, find

QEMU = "libvirt-qemu"


@pytest.fixture
def qemu_user():
    if os.geteuid() != 0:
        pytest.skip("needs root: the probe drops to the qemu user")
    try:
        pwd.getpwnam(QEMU)
    except KeyError:
        pytest.skip(f"no {QEMU} user on this host: run make setup")
    return find(QEMU)


@pytest.fixture
def base():
    root = tempfile.mkdtemp(prefix="flexvdi-qemu-", dir="/tmp")
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root)


def _build(root, user, layout):
    """layout: [(relative path, mode or "file" or "-> target", owner "qemu" | "root" | "root:qemu-group")]."""
    for rel, mode, owner in layout:
        path = os.path.join(root, rel)
        if isinstance(mode, str) and mode.startswith("-> "):
            os.symlink(os.path.join(root, mode[3:]), path)
            continue
        if mode == "file":
            with open(path, "w") as handle:
                handle.write("x")
        else:
            os.mkdir(path)
            os.chmod(path, mode)
        uid = user.uid if owner == "qemu" else 0
        gid = user.gid if owner in ("qemu", "root:qemu-group") else 0
        os.chown(path, uid, gid)


CASES = [
    # id, layout, the path asked about, ok, fragments of the message ({base} and {user} filled in)
    ("owned-by-qemu", [("vol", 0o755, "qemu")], "vol", True, []),
    ("group-access", [("vol", 0o770, "root:qemu-group")], "vol", True, []),
    (
        "parent-0700",
        [("a", 0o700, "root"), ("a/b", 0o755, "qemu")],
        "a/b",
        False,
        ["the qemu user {user} cannot reach {base}/a/b", "{base}/a (mode 0700, owner root:root) blocks it", "o+x"],
    ),
    (
        "grandparent-0700",
        [("a", 0o700, "root"), ("a/b", 0o755, "root"), ("a/b/c", 0o755, "qemu")],
        "a/b/c",
        False,
        ["{base}/a (mode 0700, owner root:root) blocks it"],
    ),
    (
        "root-0755",
        [("vol", 0o755, "root")],
        "vol",
        False,
        ["cannot write {base}/vol (mode 0755, owner root:root)", "set owner_qemu: true"],
    ),
    (
        "root-0700",
        [("vol", 0o700, "root")],
        "vol",
        False,
        ["cannot read or write or search {base}/vol (mode 0700, owner root:root)", "owner_qemu"],
    ),
    (
        "symlink-into-a-closed-parent",
        [("a", 0o700, "root"), ("a/b", 0o755, "qemu"), ("link", "-> a/b", "root")],
        "link",
        False,
        ["{base}/link (that is {base}/a/b)", "{base}/a (mode 0700, owner root:root) blocks it"],
    ),
    ("symlink-to-a-good-one", [("vol", 0o755, "qemu"), ("link", "-> vol", "root")], "link", True, []),
    ("missing", [], "nope", False, ["{base}/nope does not exist"]),
    ("missing-parent", [], "nope/vol", False, ["{base}/nope/vol does not exist ({base}/nope is missing)"]),
    ("a-file", [("vol", "file", "qemu")], "vol", False, ["{base}/vol is not a directory"]),
]


@pytest.mark.parametrize(("layout", "asked", "ok", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_access(qemu_user, base, layout, asked, ok, fragments):
    _build(base, qemu_user, layout)
    before = tree_stamps(base)
    result, message = access(os.path.join(base, asked), qemu_user)
    assert tree_stamps(base) == before, "access() changed something in the directories"
    assert result is ok, message
    if ok:
        assert message is None
    for fragment in fragments:
        assert fragment.format(base=base, user=qemu_user.name) in message


def test_access_honors_acls(qemu_user, base):
    if shutil.which("setfacl") is None:
        pytest.skip("setfacl is not installed (package acl)")
    _build(base, qemu_user, [("a", 0o700, "root"), ("a/vol", 0o700, "root")])
    assert access(os.path.join(base, "a/vol"), qemu_user)[0] is False
    for rel, perms in (("a", "x"), ("a/vol", "rwx")):
        proc = subprocess.run(
            ["setfacl", "-m", f"u:{qemu_user.name}:{perms}", os.path.join(base, rel)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            pytest.skip(f"no ACLs on the filesystem of /tmp: {proc.stderr.strip()}")
    before = tree_stamps(base)
    assert access(os.path.join(base, "a/vol"), qemu_user) == (True, None)
    assert tree_stamps(base) == before


def test_access_names_a_read_only_mount(qemu_user, base):
    _build(base, qemu_user, [("rw", 0o755, "qemu"), ("ro", 0o755, "root")])
    target = os.path.join(base, "ro")
    subprocess.run(["mount", "--bind", os.path.join(base, "rw"), target], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True)
        before = tree_stamps(base)
        ok, message = access(target, qemu_user)
        assert tree_stamps(base) == before
        assert ok is False
        assert f"cannot write {target}: it is on a read-only mount" in message
        assert access(os.path.join(base, "rw"), qemu_user) == (True, None)
    finally:
        subprocess.run(["umount", target], check=True)


def test_access_that_gets_no_answer_says_so(qemu_user, base):
    """No answer is no verdict: unknown (None), never "cannot write"; the caller words the timeout."""
    assert access(base, qemu_user, timeout=0) == (None, "timeout")
