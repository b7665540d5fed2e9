"""flexvdi.storage.host_probe's readers (module_utils/_hostprobe.py): what the cluster roles' no-op runs decide from.

The readers are fed files of a temporary root: dpkg's status file, unit files and init-script
links, the files the roles write, configfs, a mount table; Samba's commands are stand-ins on PATH.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils import _hostprobe as probe
from ansible_collections.flexvdi.storage.plugins.module_utils._runner import Runner

# dpkg's status file as dpkg writes it: a stanza per package, continuation lines indented.
STATUS = """\
Package: cifs-utils
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 2:7.0-2+deb12u1
Description: Common Internet File System utilities
 The SMB/CIFS protocol provides support for cross-platform file sharing with
 Status: deinstall ok config-files

Package: smbclient
Status: hold ok installed
Architecture: amd64
Version: 2:4.17.12+dfsg-0+deb12u4

Package: ocfs2-tools
Status: deinstall ok config-files
Architecture: amd64
Version: 1.8.7-1+b1

Package: samba
Status: install reinstreq half-installed
Architecture: amd64
Version: 2:4.17.12+dfsg-0+deb12u4

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9+deb12u10

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2025b-0+deb12u1
"""

MISSING = [
    # (wanted, missing)
    (["cifs-utils", "smbclient"], []),  # installed, and held
    (["ocfs2-tools"], ["ocfs2-tools"]),  # removed, its configuration files left
    (["samba"], ["samba"]),  # half-installed: apt must finish it
    (["nfs-common"], ["nfs-common"]),  # never installed
    (["libc6:i386", "libc6:amd64", "libc6"], ["libc6:amd64"]),
    (["tzdata:amd64", "libc6:any"], []),  # Architecture: all serves every architecture
    (["cifs-utils=2:7.0-2+deb12u1", "cifs-utils=2:7.0-1"], ["cifs-utils=2:7.0-1"]),
    # what only apt can decide counts as missing: apt then runs and decides
    (
        ["cifs-utils*", "smb?lient", "./cifs-utils.deb", "cifs-utils>=2"],
        ["cifs-utils*", "smb?lient", "./cifs-utils.deb", "cifs-utils>=2"],
    ),  # fmt: skip
    ([], []),
]


@pytest.mark.parametrize(("wanted", "missing"), MISSING)
def test_missing_packages_from_dpkg_status(tmp_path, wanted, missing):
    status = tmp_path / "status"
    status.write_text(STATUS)
    assert probe.missing_packages(wanted, str(status)) == missing


def test_without_a_dpkg_status_every_package_is_missing(tmp_path):
    assert probe.missing_packages(["cifs-utils"], str(tmp_path / "none")) == ["cifs-utils"]


def _tree(root: Path, links: dict[str, str], files: list[str]) -> None:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    for name, target in links.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / name)


UNIT = "lib/systemd/system/o2cb.service"
ENABLED = [
    # (links, files, enabled): what systemctl is-enabled o2cb reads
    ({}, ["etc/init.d/o2cb", "etc/rc2.d/S01o2cb", "etc/rc5.d/S01o2cb"], True),  # Debian 12: init script
    ({}, ["etc/init.d/o2cb", "etc/rc0.d/K01o2cb", "etc/rc5.d/K01o2cb"], False),  # disabled
    ({}, ["etc/init.d/o2cb", "etc/rcS.d/S05o2cb"], True),
    ({}, ["etc/init.d/o2cb", "etc/rc5.d/S01o2cb-other"], False),
    ({"etc/systemd/system/multi-user.target.wants/o2cb.service": "/" + UNIT}, [UNIT], True),
    ({"etc/systemd/system/remote-fs.target.requires/o2cb.service": "/" + UNIT}, [UNIT], True),
    # a unit file wins over the init script's links, as systemd's generator skips the script
    ({}, [UNIT, "etc/init.d/o2cb", "etc/rc5.d/S01o2cb"], False),
    ({"etc/systemd/system/o2cb.service": "/dev/null"}, ["etc/init.d/o2cb", "etc/rc5.d/S01o2cb"], False),  # masked
    ({}, [], False),  # neither: the service task runs and says so
]


@pytest.mark.parametrize(("links", "files", "enabled"), ENABLED)
def test_service_enabled_from_links(tmp_path, links, files, enabled):
    _tree(tmp_path, links, files)
    assert probe.service_enabled("o2cb", str(tmp_path)) is enabled
    assert probe.service_enabled("o2cb.service", str(tmp_path)) is enabled


def test_file_state_is_what_copy_compares(tmp_path):
    written = tmp_path / "cluster.conf"
    written.write_text("x")
    written.chmod(0o640)
    assert probe.file_state(str(written)) == {"regular": True, "mode": "0640", "uid": os.getuid(), "gid": os.getgid()}
    (tmp_path / "link").symlink_to(written)
    assert probe.file_state(str(tmp_path / "link"))["regular"] is False
    assert probe.file_state(str(tmp_path / "none")) is None
    assert probe.file_state(str(written / "under-a-file")) is None


class _Module:
    """What _hostprobe asks of AnsibleModule: its params, and commands run for real (stand-ins on PATH)."""

    def __init__(self, params):
        self.params = params

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return shutil.which(name)

    def run_command(self, argv, environ_update=None, data=None, check_rc=False, handle_exceptions=True):
        done = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, **environ_update), check=False)
        return done.returncode, done.stdout, done.stderr


def _module(**given):
    params = {"packages": [], "dpkg_status": probe.DPKG_STATUS, "commands": [], "service": "", "ocfs2": None,
              "gluster_pool": False, "samba": None}  # fmt: skip
    params.update(given)
    return _Module(params)


def test_what_every_role_reads(tmp_path):
    status = tmp_path / "status"
    status.write_text(STATUS)
    found = probe.gather(
        _module(packages=["cifs-utils", "smbclient", "nfs-common"], dpkg_status=str(status), commands=["sh", "flexvdi-no-such-command"])
    )  # fmt: skip
    assert found["missing_packages"] == ["nfs-common"]
    assert found["missing_commands"] == ["flexvdi-no-such-command"]
    assert found["service"] is None
    assert set(found) == {"debian", "os_name", "missing_packages", "missing_commands", "service"}


@pytest.mark.parametrize(
    ("text", "debian", "name"),
    [
        ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n', True, "Debian GNU/Linux 12 (bookworm)"),
        ('PRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nID_LIKE=debian\n', True, "Ubuntu 24.04 LTS"),
        ('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\n', False, "rocky"),
        (None, False, "unknown"),
    ],
)
def test_os_release(tmp_path, text, debian, name):
    path = tmp_path / "os-release"
    if text is not None:
        path.write_text(text)
    assert probe.os_release(str(path)) == {"debian": debian, "os_name": name}


def test_service_state_needs_systemd(tmp_path):
    _tree(tmp_path, {"etc/systemd/system/multi-user.target.wants/glusterd.service": "/lib/systemd/system/glusterd.service"},
          ["lib/systemd/system/glusterd.service"])  # fmt: skip
    assert (
        probe.service_state(Runner(_module()), "glusterd", str(tmp_path)) is None
    )  # no /run/systemd/system: not booted with systemd
    (tmp_path / "run" / "systemd" / "system").mkdir(parents=True)
    state = probe.service_state(Runner(_module()), "glusterd", str(tmp_path))
    assert state["enabled"] is True and isinstance(state["active"], bool)


MOUNTINFO = (
    "36 35 98:0 / /mnt/shared rw,noatime master:1 - ocfs2 /dev/sdb rw,heartbeat=local,nointr,data=ordered\n"
    "37 35 98:1 / /mnt/my\\040local rw - ocfs2 /dev/loop7 rw,heartbeat=none,coherency=full\n"
    "38 35 8:1 / /home rw - ext4 /dev/sda1 rw\n"
)


def test_ocfs2_reads_its_files_configfs_and_mounts(tmp_path):
    conf = tmp_path / "ocfs2" / "cluster.conf"
    conf.parent.mkdir()
    conf.write_text("cluster:\n")
    node = tmp_path / "configfs" / "cluster" / "itest" / "node" / "node1"
    node.mkdir(parents=True)
    for name, value in {"num": "0", "ipv4_address": "192.0.2.11", "ipv4_port": "7777", "local": "1"}.items():
        (node / name).write_text(value + "\n")
    (node.parents[1] / "idle_timeout_ms").write_text("30000\n")
    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    found = probe.gather(
        _module(ocfs2={"conf": str(conf), "defaults": str(tmp_path / "default" / "o2cb"),
                       "configfs": str(tmp_path / "configfs"), "mountinfo": str(tmp_path / "mountinfo")})
    )  # fmt: skip
    assert found["nodename"] == os.uname().nodename
    assert found["conf_text"] == "cluster:\n" and found["conf_file"]["regular"] is True
    assert found["defaults_text"] is None and found["defaults_file"] is None
    assert found["missing_dirs"] == [str(tmp_path / "default")]
    assert found["live"] == {
        "itest": {
            "nodes": {"node1": {"number": 0, "address": "192.0.2.11", "port": 7777}},
            "local_node": "node1",
            "timeouts": {
                "heartbeat_threshold": None,
                "idle_timeout_ms": 30000,
                "keepalive_delay_ms": None,
                "reconnect_delay_ms": None,
            },
        }
    }
    assert found["mounts"] == [
        {"source": "/dev/sdb", "mount_point": "/mnt/shared", "cluster": True},
        {"source": "/dev/loop7", "mount_point": "/mnt/my local", "cluster": False},
    ]
    assert probe.ocfs2_mounts(str(tmp_path / "none")) == []


def test_gluster_pool_without_gluster(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    pool = probe.gather(_module(gluster_pool=True))["pool"]
    assert pool["rc"] == 127 and pool["stdout"] == "" and "gluster" in pool["stderr"]


def test_gluster_pool_that_does_not_answer_is_bounded(monkeypatch, tmp_path):
    gluster = tmp_path / "gluster"
    gluster.write_text("#!/bin/sh\nexec sleep 30\n")
    gluster.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (tmp_path, os.environ["PATH"]))
    monkeypatch.setattr(probe, "POOL_TIMEOUT", 1)
    started = time.monotonic()
    pool = probe.gather(_module(gluster_pool=True))["pool"]
    assert time.monotonic() - started < 20  # not the fake glusterd's 30 s
    assert pool["rc"] == 127 and "did not finish within 1 s" in pool["stderr"]


# --- Samba -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "digest"),
    [  # RFC 1320, A.5
        (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
        (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
        (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
        (b"message digest", "d9130a8164549fe818874806e1c7014b"),
        (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
        (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
    ],
)
def test_md4(data, digest):
    assert probe._md4(data).hex() == digest


def test_nt_hash():
    assert probe.nt_hash("password") == "8846F7EAEE8FB117AD06BDD830B7586C"
    assert probe.nt_hash("pässwörd €") == probe._md4("pässwörd €".encode("utf-16-le")).hex().upper()


def _samba(tmp_path, monkeypatch, pdbedit_line, passdb=True):
    """smb.conf, a passdb and stand-ins of testparm and pdbedit on PATH (pdbedit prints `pdbedit_line`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    private = tmp_path / "private"
    private.mkdir()
    if passdb:
        (private / "passdb.tdb").write_text("")
    scripts = {
        "testparm": '#!/bin/sh\ncase "$*" in *"passdb backend"*) echo tdbsam;; *"private dir"*) echo %s;;'
        ' *"server min protocol"*) echo SMB2_10;; *path*) echo /srv/media;; esac\n' % private,
        "pdbedit": "#!/bin/sh\necho '%s'\n" % pdbedit_line,
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))
    config = tmp_path / "smb.conf"
    config.write_bytes(b"[global]\n")
    return {"config": str(config), "share": "media", "user": "flexvdi", "path": str(tmp_path / "media"),
            "stock": str(tmp_path / "stock.conf"), "hashfile": str(tmp_path / "hashfile")}  # fmt: skip


SECRET = "S3cret-pass"
HASH = probe.nt_hash(SECRET)


@pytest.mark.parametrize(
    ("line", "passdb", "password"),
    [
        ("flexvdi:1000:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:%s:[U          ]:LCT-66000000:" % HASH, True, 0),
        ("flexvdi:1000:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:%s:[U          ]:LCT-66000000:" % HASH.lower(), True, 0),
        ("flexvdi:1000:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:%s:[DU         ]:LCT-66000000:" % HASH, True, 1),  # disabled
        ("flexvdi:1000:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:%s:[U          ]:LCT-66000000:" % ("0" * 32), True, 1),
        ("other:1000:X:%s:[U          ]:LCT-66000000:" % HASH, True, 1),
        ("", True, 1),
        ("flexvdi:1000:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:%s:[U          ]:LCT-66000000:" % HASH, False, 1),  # no passdb
    ],
)
def test_samba_password_state(tmp_path, monkeypatch, line, passdb, password):
    samba = _samba(tmp_path, monkeypatch, line, passdb)
    found = probe.gather(_module(commands=["testparm", "pdbedit"], samba=dict(samba, password=SECRET)))
    assert found["password"] == password and found["password_error"] == ""
    assert found["readback"] == [{"rc": 0, "stdout": "SMB2_10\n"}, {"rc": 0, "stdout": "/srv/media\n"}]
    assert base64.b64decode(found["config"]) == b"[global]\n" and found["config_dir"] is True
    assert found["stock"] is None and found["ucf_md5"] == ""
    assert SECRET not in repr(found) and HASH not in repr(found).upper()


def test_samba_without_its_commands_or_config(tmp_path, monkeypatch):
    samba = _samba(tmp_path, monkeypatch, "")
    Path(samba["config"]).unlink()
    found = probe.gather(_module(commands=["flexvdi-no-such-command"], samba=dict(samba, password=SECRET)))
    assert found["password"] is None and found["readback"] is None and found["config"] is None
    assert found["config_md5"] is None
    found = probe.gather(_module(commands=["testparm"], samba=dict(samba, password=SECRET)))
    assert found["password"] == 1 and found["readback"] is None  # no smb.conf yet: nothing to compare with


def test_samba_error_names_only_its_type(tmp_path, monkeypatch):
    samba = _samba(tmp_path, monkeypatch, "")

    def broken(*_args):
        raise ValueError("the password was " + SECRET)

    monkeypatch.setattr(probe, "password_state", broken)
    found = probe.gather(_module(commands=["testparm"], samba=dict(samba, password=SECRET)))
    assert found["password"] == 3 and found["password_error"] == "cannot compare the Samba password: ValueError"


def test_samba_user_directory_and_ucf(tmp_path, monkeypatch):
    samba = _samba(tmp_path, monkeypatch, "")
    Path(samba["path"]).mkdir(mode=0o2750)
    os.chmod(samba["path"], 0o2750)
    Path(samba["stock"]).write_bytes(b"stock\n")
    Path(samba["hashfile"]).write_text("0123456789abcdef0123456789abcdef  %s\n" % samba["config"])
    found = probe.samba(Runner(_module()), password=SECRET, commands_missing=True, **dict(samba, user="root"))
    assert found["user"]["home"] == "/root"
    assert found["directory"]["isdir"] is True and stat.S_IMODE(found["directory"]["mode"]) == 0o2750
    assert base64.b64decode(found["stock"]) == b"stock\n" and found["ucf_md5"] == "0123456789abcdef0123456789abcdef"
    assert (
        probe.samba(
            Runner(_module()), password=SECRET, commands_missing=True, **dict(samba, user="flexvdi-no-such-user")
        )["user"]
        is None
    )
