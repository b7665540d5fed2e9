"""A converge never reports as fine a volume whose server is dead (issue 16).

The NFS client answers stat/lstat of a directory from its attribute cache for up to a minute
after its server died; only a question that reaches the server (statvfs) tells. These tests
feed the engine a mount whose cached answers still come (``os.path.lexists``, ``isdir``) while
every question that must reach the server times out, as a dead hard NFS mount does, and the
converge must fail in storage_info's words and write nothing. The real kernel's side of it
(stat answered from the cache, statvfs hanging) is proven on a FUSE mount in
tests/integration/test_hardening.py and on NFS, CIFS and Gluster in the lab.
"""

from __future__ import annotations

import errno
import os

import pytest
from _fakes import FakeModule

from ansible_collections.flexvdi.storage.plugins.module_utils import _external, _media, _probe, _qemu, _volumes
from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError
from ansible_collections.flexvdi.storage.plugins.module_utils._host import Host
from ansible_collections.flexvdi.storage.plugins.module_utils._mounts import parse_mountinfo

SERVER = "10.0.0.5"
SOURCE = f"{SERVER}:/srv/exports/images"
REAL_BOUNDED = _probe.bounded
# What a probe asks that the NFS client answers from its caches without the server.
CACHED = (os.path.lexists, os.path.isdir, os.path.exists)


@pytest.fixture
def volume(tmp_path, monkeypatch):
    """An external volume whose mount point is an NFS mount (in this host's view: mountinfo)."""
    mount_point = tmp_path / "nfs"
    mount_point.mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text("# fstab\n")
    mountinfo = parse_mountinfo(
        f"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
        f"99 1 0:55 / {mount_point} rw,relatime - nfs4 {SOURCE} rw,vers=4.2,hard,proto=tcp\n"
    )
    monkeypatch.setattr(Host, "mounts", property(lambda self: mountinfo))
    params = {
        "image_storage": "Lab",
        "name": "NFS",
        "mount_point": str(mount_point),
        "src": None,
        "fstype": None,
        "opts": None,
        "require_mountpoint": True,
        "owner_qemu": False,
        "shared": True,
        "state": "present",
        "force": False,
        "registry": str(tmp_path / "etc" / "storage.json"),
        "fstab": str(fstab),
        "qemu_user": None,
        "inventory_hostname": "node1",
        "inventory_hosts": None,
    }
    registry = tmp_path / "etc" / "storage.json"
    registry.parent.mkdir()
    registry.write_text(
        '{"schema_version": 1, "image_storages": {"Lab": {"hosts": ["node1"], "root": "%s", "volumes": {}}}, '
        '"media_storages": {}, "direct_storages": {}}' % tmp_path
    )
    return params, registry, fstab


def _converge(params, check_mode=False):
    module = FakeModule(dict(params), {})
    module.check_mode = check_mode
    return _external.converge(Host(module))


def _dead_server(answers=()):
    """bounded() as a dead hard NFS mount with a warm cache gives it: the cached questions are
    answered, ``answers`` (functions) too, and everything else times out."""

    def fake(fn, *args, timeout=10.0):
        if fn in CACHED or fn in answers:
            return REAL_BOUNDED(fn, *args, timeout=timeout)
        return False, "timeout"

    return fake


def _snapshot(registry, fstab):
    return registry.read_bytes(), fstab.read_bytes()


def test_a_converge_fails_when_only_the_cache_answers(volume, monkeypatch):
    params, registry, fstab = volume
    _converge(params)  # the server alive: registered
    before = _snapshot(registry, fstab)
    monkeypatch.setattr(_probe, "bounded", _dead_server())
    for check_mode in (True, False):
        with pytest.raises(StorageError) as caught:
            _converge(params, check_mode=check_mode)
        assert caught.value.msg == (
            f"external volume NFS of image storage Lab: NFS server {SERVER} is not responding: "
            f"{params['mount_point']} (nfs4 from {SOURCE}) did not answer within 10 s; nothing was changed"
        )
        assert not caught.value.left
        assert _snapshot(registry, fstab) == before


def test_a_converge_fails_when_the_server_dies_after_the_first_question(volume, monkeypatch):
    """statvfs answered, then the details view's probe timed out: no silent note, a failure."""
    params, registry, fstab = volume
    _converge(params)
    before = _snapshot(registry, fstab)
    monkeypatch.setattr(_probe, "bounded", _dead_server(answers=(_probe.statfs_errno,)))
    with pytest.raises(StorageError) as caught:
        _converge(params)
    assert "NFS server 10.0.0.5 is not responding" in caught.value.msg
    assert caught.value.msg.endswith("did not answer within 10 s; nothing was changed")
    assert _snapshot(registry, fstab) == before


def test_a_converge_that_changed_something_says_what(volume, monkeypatch):
    """A fresh registration, then the server stops answering: the failure names what was done."""
    params, registry, _fstab = volume
    monkeypatch.setattr(_probe, "bounded", _dead_server(answers=(_probe.statfs_errno,)))
    with pytest.raises(StorageError) as caught:
        _converge(params)
    assert "is not responding" in caught.value.msg
    assert "; done before it stopped answering: update " + str(registry) in caught.value.msg
    assert caught.value.left


def test_a_qemu_access_that_times_out_fails_the_converge(volume, monkeypatch, tmp_path):
    params, registry, fstab = volume
    _converge(params)
    before = _snapshot(registry, fstab)
    user = _qemu.QemuUser("qemu", os.getuid(), os.getgid(), (), "qemu")
    monkeypatch.setattr(Host, "qemu_user", lambda self, required=False: user)
    monkeypatch.setattr(_qemu, "access", lambda path, user, timeout: (None, "timeout"))
    with pytest.raises(StorageError) as caught:
        _converge(params)
    assert f"NFS server {SERVER} is not responding" in caught.value.msg
    assert _snapshot(registry, fstab) == before


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EHOSTDOWN, "NFS server 10.0.0.5 is not responding: {mp} (nfs4 from {src}) answered: Host is down"),
        (errno.EIO, "NFS server 10.0.0.5 is not responding: {mp} (nfs4 from {src}) answered: Input/output error"),
        (errno.EACCES, "probing {mp} failed: Permission denied"),
    ],
)
def test_a_server_that_answers_an_error_fails_the_converge(volume, monkeypatch, code, words):
    """A soft NFS mount or CIFS answers EIO or EHOSTDOWN quickly instead of hanging."""
    params, registry, fstab = volume
    _converge(params)
    before = _snapshot(registry, fstab)
    monkeypatch.setattr(_probe, "bounded", lambda fn, *args, timeout=10.0: (True, code))
    with pytest.raises(StorageError) as caught:
        _converge(params)
    assert caught.value.msg == "external volume NFS of image storage Lab: {}; nothing was changed".format(
        words.format(mp=params["mount_point"], src=SOURCE)
    )
    assert _snapshot(registry, fstab) == before


def test_storage_info_and_the_converge_use_the_same_words(volume, monkeypatch):
    params, _registry, _fstab = volume
    _converge(params)
    monkeypatch.setattr(_probe, "bounded", _dead_server())
    module = FakeModule(dict(params), {})
    host = Host(module)
    record = {"type": "external", "mount_point": params["mount_point"], "require_mountpoint": True}
    info = _volumes.status(host, "Lab", "NFS", record)
    assert info["status"] == "unresponsive"
    with pytest.raises(StorageError) as caught:
        _converge(params)
    assert info["message"] in caught.value.msg


def test_fuse_enotconn_is_stale_only_without_its_client(monkeypatch, tmp_path):
    """Gluster answers ENOTCONN both when its client died and when every brick is gone."""
    mount_point = str(tmp_path)
    mountinfo = parse_mountinfo(f"99 1 0:55 / {mount_point} rw - fuse.glusterfs 10.0.0.7:/gv rw\n")
    module = FakeModule({"registry": str(tmp_path / "r.json")}, {})
    host = Host(module)
    host._mounts = mountinfo
    monkeypatch.setattr(_probe, "fuse_client_alive", lambda mp: False)
    assert _volumes.answer_problem(host, mount_point, errno.ENOTCONN) is None
    monkeypatch.setattr(_probe, "fuse_client_alive", lambda mp: True)
    assert _volumes.answer_problem(host, mount_point, errno.ENOTCONN) == (
        f"Gluster server 10.0.0.7 is not responding: {mount_point} (fuse.glusterfs from 10.0.0.7:/gv) "
        "answered: Transport endpoint is not connected"
    )


def test_fuse_client_alive_finds_a_process_by_its_last_argument(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "mnt"
    target.mkdir()
    assert not _probe.fuse_client_alive(str(target))
    script = "import time; print('up', flush=True); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", script, str(target) + "/"], stdout=subprocess.PIPE, text=True)
    try:
        # Popen returns once forked: until the child has exec'd, /proc shows pytest's command line.
        assert child.stdout.readline() == "up\n"
        assert _probe.fuse_client_alive(str(target))
    finally:
        child.kill()
        child.wait()
    assert not _probe.fuse_client_alive(str(target))


def test_media_listing_asks_the_server_first(tmp_path, monkeypatch):
    """A listing may come from the client's cache: _listing asks statvfs first."""
    monkeypatch.setattr(_media, "statfs_errno", lambda path: errno.EHOSTDOWN)
    assert _media._listing(str(tmp_path)) == errno.EHOSTDOWN
