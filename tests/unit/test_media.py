"""Media storage logic: server/vers validation, credentials file, fstab options, file listing."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils import _media
from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError
from ansible_collections.flexvdi.storage.plugins.module_utils._mounts import FstabEntry


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("10.0.0.5", "10.0.0.5"),
        ("fd00::0005", "fd00::5"),
        ("nas", "nas"),
        ("nas.example.com.", "nas.example.com."),
        ("x-1.y", "x-1.y"),
    ],
)
def test_good_servers(server, expected):
    assert _media.check_server(server) == expected


@pytest.mark.parametrize("server", ["", None, "10.0.0.5/24", "-nas", "nas_1", "a b", "//nas/share", "x" * 64])
def test_bad_servers_name_the_option(server):
    with pytest.raises(StorageError, match="fix server"):
        _media.check_server(server)


@pytest.mark.parametrize("vers", ["1", "1.0", "NT1", "smb1"])
def test_smb1_refused(vers):
    with pytest.raises(StorageError, match="SMB1, which is refused.*set vers"):
        _media.check_vers(vers)


@pytest.mark.parametrize("vers", ["2.1", "3.0", "3.02", "3.1.1", "3", "default"])
def test_good_vers(vers):
    assert _media.check_vers(vers) == vers


@pytest.mark.parametrize("vers", ["4", "3.1", "", "3.1.1,sec=none"])
def test_unknown_vers(vers):
    with pytest.raises(StorageError, match="not an SMB dialect"):
        _media.check_vers(vers)


def test_credentials_file_text():
    assert _media.credentials_text("flexvdi", "s3cr,et=x y", None) == "username=flexvdi\npassword=s3cr,et=x y\n"
    assert _media.credentials_text("u", "p", "CORP") == "username=u\npassword=p\ndomain=CORP\n"


@pytest.mark.parametrize(("field", "args"), [("password", ("u", "a\nb", None)), ("domain", ("u", "p", "C\nD"))])
def test_credentials_refuse_newlines(field, args):
    with pytest.raises(StorageError, match="%s must not contain a newline" % field):
        _media.credentials_text(*args)


def test_cifs_options_and_fstab_line_never_hold_the_password():
    record = {"vers": "3.1.1", "port": 445}
    qemu = SimpleNamespace(uid=64055, gid=994)
    opts = _media.cifs_options(record, "/etc/flexvdi/credentials/cifs.cred", qemu, read_only=False)
    assert opts == [
        "credentials=/etc/flexvdi/credentials/cifs.cred",
        "vers=3.1.1",
        "uid=64055",
        "gid=994",
        "file_mode=0640",
        "dir_mode=0750",
        "rw",
        "_netdev",
        "nofail",
    ]
    line = FstabEntry("//nas/media share", "/var/lib/flexvdi/media/cifs", "cifs", ",".join(opts)).render()
    assert line.split("\t") == [
        "//nas/media\\040share",
        "/var/lib/flexvdi/media/cifs",
        "cifs",
        "credentials=/etc/flexvdi/credentials/cifs.cred,vers=3.1.1,uid=64055,gid=994,"
        "file_mode=0640,dir_mode=0750,rw,_netdev,nofail",
        "0",
        "0",
    ]
    assert "password" not in line


def test_cifs_options_read_only_and_port():
    opts = _media.cifs_options({"vers": "3.0", "port": 4455}, "/c", None, read_only=True)
    assert "port=4455" in opts and "ro" in opts and "rw" not in opts
    assert not any(o.startswith(("uid=", "gid=")) for o in opts)


def test_share_path_from_samba_config(tmp_path):
    conf = tmp_path / "smb.conf"
    conf.write_text(
        "[global]\n  path = /nope\n; [media]\n# path = /commented\n[Media]\n   Path = /srv/media share \n[other]\npath=/x\n"
    )
    assert _media.share_path(str(conf), "media") == "/srv/media share"
    with pytest.raises(StorageError, match="share iso has no path in .*fix share or samba_config"):
        _media.share_path(str(conf), "iso")


def test_files_lists_media_only_sorted(tmp_path):
    (tmp_path / "b.ISO").write_bytes(b"x" * 10)
    (tmp_path / "a.fvm").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("no")
    (tmp_path / ".hidden.iso").write_text("no")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.iso").write_bytes(b"yy")
    (tmp_path / "dir.iso").mkdir()
    os.symlink("/etc/passwd", tmp_path / "link.iso")
    os.utime(tmp_path / "b.ISO", (1_700_000_000, 1_700_000_000))
    listed = _media.files(str(tmp_path))
    assert [(f["name"], f["type"], f["size"]) for f in listed] == [
        ("a.fvm", "fvm", 0),
        ("b.ISO", "iso", 10),
        ("sub/c.iso", "iso", 2),
    ]
    assert listed[1]["mtime"] == 1_700_000_000
    assert _media.files(str(tmp_path / "missing")) == []


def test_files_lists_ten_thousand_in_well_under_a_second(tmp_path):
    for d in range(10):
        sub = tmp_path / ("d%d" % d)
        sub.mkdir()
        for i in range(1000):
            (sub / ("image-%04d.iso" % i)).touch()
    start = time.perf_counter()
    listed = _media.files(str(tmp_path))
    elapsed = time.perf_counter() - start
    assert len(listed) == 10_000
    assert listed[0]["name"] == "d0/image-0000.iso"
    assert elapsed < 0.5, elapsed


def test_summarize_keeps_the_first_by_name_with_count_and_size():
    found = [{"name": "f%05d.iso" % i, "type": "iso", "size": i, "mtime": 0} for i in range(250)]
    summary = _media.summarize(found)
    assert [f["name"] for f in summary["files"]] == ["f%05d.iso" % i for i in range(_media.FILES_SHOWN)]
    assert (summary["files_count"], summary["files_size"], summary["files_truncated"]) == (250, sum(range(250)), True)
    everything = _media.summarize(found, list_all=True)
    assert everything["files"] == found and everything["files_truncated"] is False
    small = _media.summarize(found[:3])
    assert (len(small["files"]), small["files_truncated"]) == (3, False)
    assert _media.summarize([]) == {"files": [], "files_count": 0, "files_size": 0, "files_truncated": False}
