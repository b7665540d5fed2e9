"""The probes the cluster roles run on each host (roles/*/files/*_probe.py): what a no-op run decides from.

Each probe is loaded from its file as the role runs it (python3 -c: ``__name__ == "__main__"``
only there), and its readers are fed files of a temporary root: dpkg's status file, unit files
and init-script links, the files the role writes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROLES = Path(__file__).resolve().parents[2] / "roles"
PROBES = {
    "ocfs2_cluster": ROLES / "ocfs2_cluster" / "files" / "ocfs2_cluster_probe.py",
    "cifs_client": ROLES / "cifs_client" / "files" / "cifs_client_probe.py",
}


def _load(role: str):
    spec = importlib.util.spec_from_file_location(f"_probe_{role}", PROBES[role])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=list(PROBES))
def probe(request):
    return _load(request.param)


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
def test_missing_packages_from_dpkg_status(probe, tmp_path, wanted, missing):
    status = tmp_path / "status"
    status.write_text(STATUS)
    assert probe.missing_packages(wanted, str(status)) == missing


def test_without_a_dpkg_status_every_package_is_missing(probe, tmp_path):
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
    probe = _load("ocfs2_cluster")
    assert probe.service_enabled("o2cb", str(tmp_path)) is enabled
    assert probe.service_enabled("o2cb.service", str(tmp_path)) is enabled


def test_file_state_is_what_copy_compares(tmp_path):
    probe = _load("ocfs2_cluster")
    written = tmp_path / "cluster.conf"
    written.write_text("x")
    written.chmod(0o640)
    assert probe.file_state(str(written)) == {"regular": True, "mode": "0640", "uid": os.getuid(), "gid": os.getgid()}
    (tmp_path / "link").symlink_to(written)
    assert probe.file_state(str(tmp_path / "link"))["regular"] is False
    assert probe.file_state(str(tmp_path / "none")) is None
    assert probe.file_state(str(written / "under-a-file")) is None


def _run_probe(role: str, args: dict) -> dict:
    """The probe run as the role runs it: python3 -c TEXT JSON."""
    done = subprocess.run(
        [sys.executable, "-c", PROBES[role].read_text(), json.dumps(args)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_ocfs2_probe_reads_everything_in_one_run(tmp_path):
    status = tmp_path / "status"
    status.write_text(STATUS)
    conf = tmp_path / "ocfs2" / "cluster.conf"
    conf.parent.mkdir()
    conf.write_text("cluster:\n")
    found = _run_probe(
        "ocfs2_cluster",
        {
            "host": "node1",
            "conf": str(conf),
            "defaults": str(tmp_path / "default" / "o2cb"),
            "configfs": str(tmp_path / "configfs"),
            "mountinfo": str(tmp_path / "mountinfo"),
            "packages": ["ocfs2-tools", "cifs-utils"],
            "dpkg_status": str(status),
            "service": "",
        },
    )
    assert found["host"] == "node1"
    assert found["conf_text"] == "cluster:\n" and found["conf_file"]["regular"] is True
    assert found["defaults_text"] is None and found["defaults_file"] is None
    assert found["missing_dirs"] == [str(tmp_path / "default")]
    assert found["missing_packages"] == ["ocfs2-tools"]
    assert found["service_enabled"] is None  # not asked: the role does not manage o2cb
    # what the service tasks pass as use: (no fact-gathering run to find the service manager)
    assert found["systemd"] is os.path.isdir("/run/systemd/system")
    assert found["live"] == {} and found["mounts"] == []


def test_cifs_probe_reads_everything_in_one_run(tmp_path):
    status = tmp_path / "status"
    status.write_text(STATUS)
    found = _run_probe(
        "cifs_client",
        {"packages": ["cifs-utils", "smbclient", "nfs-common"], "dpkg_status": str(status), "commands": ["sh", "flexvdi-no-such-command"]},
    )  # fmt: skip
    assert found["missing_packages"] == ["nfs-common"]
    assert found["missing_commands"] == ["flexvdi-no-such-command"]
    assert found["os_release"] == (Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else "")
