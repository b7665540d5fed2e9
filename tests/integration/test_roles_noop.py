"""A no-op run of the cluster roles executes (almost) nothing on the host.

Under emulation every task that runs something on a managed host costs seconds, apt's no-op
the most: the roles read everything in one probe (packages from dpkg's status file, the files
they write, the service's links) and touch packages, files and service only where it says so.
These tests run each role twice on this host and count, from the ansible.posix.json callback,
the tasks of the second run that executed on the host: not skipped, and not an action that runs
on the controller alone (set_fact, assert, debug, include_*...). Then they change what the probe
reads and prove the gated task runs again, with its diff, and only for what differs.

ocfs2_cluster runs into a temporary root with ocfs2_cluster_manage_service: false, as in
test_ocfs2_cluster (this kernel has no OCFS2 cluster stack: the service steps are the lab's).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import _executions
import pytest
import yaml

MOST = 2  # module executions on the host that a no-op run of a role may cost (issue 17)

# What runs on the controller alone, and the JSON callback: one definition, in _executions.
CONTROLLER_ONLY = _executions.CONTROLLER_ONLY
JSON_CALLBACK = _executions.JSON_OUTPUT


def _report(result) -> dict:
    return _executions.report(result.stdout)


def _tasks(report: dict, host: str = "localhost") -> list[tuple[str, dict]]:
    """(task name, the host's result) of every task of the run, in order."""
    return [
        (task["task"]["name"], task["hosts"][host])
        for play in report["plays"]
        for task in play["tasks"]
        if host in task["hosts"]
    ]


def _executed_on_host(report: dict) -> list[str]:
    """The tasks that ran something on the host: not skipped (a loop: some item not skipped), not controller-only."""
    executed = []
    for name, result in _tasks(report):
        action = result.get("action", "").rsplit(".", 1)[-1]
        items = result.get("results")
        skipped = all(item.get("skipped") for item in items) if items else result.get("skipped", False)
        if not skipped and action not in CONTROLLER_ONLY:
            executed.append(f"{name} ({result.get('action')})")
    return executed


def _task(report: dict, ending: str) -> dict:
    found = [result for name, result in _tasks(report) if name.endswith(ending)]
    assert len(found) == 1, [name for name, _r in _tasks(report)]
    return found[0]


def _probed(report: dict, name: str) -> dict:
    """What the role's probe (flexvdi.storage.host_probe) read (its task's name starts with `name`)."""
    found = [result for task, result in _tasks(report) if task.split(" : ", 1)[-1].startswith(name)]
    assert len(found) == 1, [task for task, _r in _tasks(report)]
    return found[0]


def _stats(report: dict) -> dict:
    return report["stats"]["localhost"]


# dpkg's status file of this host, less one package: the probe then finds it missing.
def _status_without(path: Path, package: str) -> Path:
    stanzas = Path("/var/lib/dpkg/status").read_text().split("\n\n")
    kept = [s for s in stanzas if f"Package: {package}\n" not in s + "\n"]
    assert len(kept) == len(stanzas) - 1, f"{package} is not in this host's dpkg status: run `make setup`"
    path.write_text("\n\n".join(kept))
    return path


# --- ocfs2_cluster ---------------------------------------------------------------------------

OCFS2_PLAY = """\
- name: ocfs2_cluster role into a temporary root
  hosts: localhost
  gather_facts: false
  roles:
    - role: flexvdi.storage.ocfs2_cluster
"""


@pytest.fixture
def ocfs2(tmp_paths, run_playbook):
    if os.geteuid() != 0:
        pytest.fail("test_roles_noop needs root: run the integration tier as root", pytrace=False)
    if not shutil.which("o2cb"):
        pytest.fail("ocfs2-tools is not installed: run `make setup`", pytrace=False)
    base = Path(tmp_paths.root).parent
    root = base / "root"
    (base / "configfs").mkdir()
    inventory = base / "inventory.yml"
    hosts = {
        "localhost": {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "ocfs2_cluster_address": "10.253.2.11",
        },
        "node2": {"ocfs2_cluster_address": "10.253.2.12", "ocfs2_cluster_node_name": "node2"},
    }
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    mountinfo = base / "mountinfo"
    mountinfo.write_text(Path("/proc/self/mountinfo").read_text())
    extra = {
        "ocfs2_cluster_hosts": ["localhost", "node2"],
        "ocfs2_cluster_name": "itest",
        "ocfs2_cluster_manage_service": False,
        "ocfs2_cluster_apt_cache_valid_time": 0,
        "ocfs2_cluster_packages": ["ocfs2-tools"],
        "ocfs2_cluster_config_path": str(root / "etc" / "ocfs2" / "cluster.conf"),
        "ocfs2_cluster_defaults_path": str(root / "etc" / "default" / "o2cb"),
        "__ocfs2_cluster_configfs": str(base / "configfs"),
        "__ocfs2_cluster_mountinfo": str(mountinfo),
    }

    def run(check: bool = False, diff: bool = False, **more) -> dict:
        env = dict(JSON_CALLBACK, ANSIBLE_DIFF_ALWAYS="1" if diff else "0")
        result = run_playbook(OCFS2_PLAY, extra_vars={**extra, **more}, check=check, inventory=inventory, env=env)
        report = _report(result)
        assert result.rc == 0 and _stats(report)["failures"] == 0, result.stdout[-3000:]
        return report

    run.conf = Path(extra["ocfs2_cluster_config_path"])
    run.defaults = Path(extra["ocfs2_cluster_defaults_path"])
    run.base = base
    return run


def test_ocfs2_cluster_noop_runs_the_probe_alone(ocfs2):
    first = ocfs2()
    assert _stats(first)["changed"] > 0
    written = (ocfs2.conf.read_bytes(), ocfs2.defaults.read_bytes())

    again = ocfs2()
    executed = _executed_on_host(again)
    assert _stats(again)["changed"] == 0, executed
    assert len(executed) <= MOST, executed
    assert executed == [
        "flexvdi.storage.ocfs2_cluster : Read this host's cluster.conf, o2cb settings, running o2cb, OCFS2 mounts"
        " and packages (flexvdi.storage.host_probe)"
    ]
    checked = ocfs2(check=True)
    assert _stats(checked)["changed"] == 0 and len(_executed_on_host(checked)) <= MOST
    assert (ocfs2.conf.read_bytes(), ocfs2.defaults.read_bytes()) == written


def test_ocfs2_cluster_writes_again_what_the_probe_finds_changed(ocfs2):
    assert ocfs2()["stats"]["localhost"]["changed"] > 0
    conf = ocfs2.conf.read_text()

    # Another mode: only cluster.conf is written again, its text unchanged.
    ocfs2.conf.chmod(0o600)
    fixed = ocfs2()
    assert _task(fixed, "Write cluster.conf")["changed"] is True
    assert _task(fixed, "keeping its other lines").get("skipped") is True
    assert oct(ocfs2.conf.stat().st_mode & 0o777) == "0o644" and ocfs2.conf.read_text() == conf

    # Another line in /etc/default/o2cb: check mode shows the diff and writes nothing; the run writes it.
    with ocfs2.defaults.open("a") as handle:
        handle.write("O2CB_IDLE_TIMEOUT_MS=60000\n")
    before = ocfs2.defaults.read_text()
    checked = ocfs2(check=True, diff=True)
    task = _task(checked, "keeping its other lines")
    assert task["changed"] is True and _task(checked, "Write cluster.conf").get("skipped") is True
    diffs = task["diff"] if isinstance(task["diff"], list) else [task["diff"]]
    assert [
        ("O2CB_IDLE_TIMEOUT_MS=60000" in d["before"], "O2CB_IDLE_TIMEOUT_MS=60000" in d["after"]) for d in diffs
    ] == [(True, False)], diffs
    assert ocfs2.defaults.read_text() == before
    assert _task(ocfs2(), "keeping its other lines")["changed"] is True
    assert "O2CB_IDLE_TIMEOUT_MS=60000" not in ocfs2.defaults.read_text()

    # A symbolic link where cluster.conf was: not the file the role writes.
    real = ocfs2.base / "elsewhere.conf"
    ocfs2.conf.rename(real)
    ocfs2.conf.symlink_to(real)
    assert _task(ocfs2(check=True), "Write cluster.conf")["changed"] is True


def test_ocfs2_cluster_installs_only_what_dpkg_lacks(ocfs2):
    """ocfs2-tools gone from dpkg's status file (a copy): apt runs, for it alone (check mode: installs nothing)."""
    status = _status_without(ocfs2.base / "status", "ocfs2-tools")
    noop = ocfs2(check=True, ocfs2_cluster_packages=["ocfs2-tools", "cifs-utils"])
    assert _task(noop, "Install ocfs2-tools").get("skipped") is True
    checked = ocfs2(check=True, ocfs2_cluster_packages=["ocfs2-tools", "cifs-utils"], __ocfs2_cluster_dpkg_status=str(status))  # fmt: skip
    assert _probed(checked, "Read this host's cluster.conf")["missing_packages"] == ["ocfs2-tools"]
    assert _task(checked, "Install ocfs2-tools").get("skipped") is not True  # apt gets that list (tasks/member.yml)


# --- cifs_client -----------------------------------------------------------------------------

CIFS_PLAY = """\
- name: cifs_client role
  hosts: localhost
  gather_facts: false
  roles:
    - role: flexvdi.storage.cifs_client
      cifs_client_apt_cache_valid_time: 0
"""


@pytest.fixture
def cifs(run_playbook, tmp_path):
    if os.geteuid() != 0:
        pytest.fail("test_roles_noop needs root: run the integration tier as root", pytrace=False)
    if not (shutil.which("mount.cifs") and shutil.which("smbclient")):
        pytest.fail("cifs-utils and smbclient are not installed: run `make setup`", pytrace=False)

    def run(check: bool = False, **extra) -> dict:
        result = run_playbook(CIFS_PLAY, extra_vars=extra, check=check, env=JSON_CALLBACK)
        report = _report(result)
        assert result.rc == 0 and _stats(report)["failures"] == 0, result.stdout[-3000:]
        return report

    run.tmp = tmp_path
    return run


def test_cifs_client_noop_runs_the_probe_alone(cifs):
    assert _stats(cifs())["failures"] == 0  # the tools are there (make setup): the first run is a no-op too
    again = cifs()
    executed = _executed_on_host(again)
    assert _stats(again)["changed"] == 0, executed
    assert len(executed) <= MOST, executed
    assert executed == [
        "flexvdi.storage.cifs_client : Read this host's OS, installed CIFS packages and commands (flexvdi.storage.host_probe)"
    ]
    checked = cifs(check=True)
    assert _stats(checked)["changed"] == 0 and len(_executed_on_host(checked)) <= MOST

    # No packages: nothing runs on the host at all.
    assert _executed_on_host(cifs(cifs_client_packages=[])) == []


def test_cifs_client_installs_only_what_dpkg_lacks(cifs):
    """smbclient gone from dpkg's status file (a copy): apt runs for it alone, and the commands are looked for
    again after the install."""
    status = _status_without(cifs.tmp / "status", "smbclient")
    done = cifs(__cifs_client_dpkg_status=str(status))
    assert _probed(done, "Read this host's OS")["missing_packages"] == ["smbclient"]
    apt = _task(done, "Install the CIFS client tools")  # given that list (tasks/main.yml)
    assert apt.get("skipped") is not True and apt["changed"] is False  # apt itself finds it installed
    assert _task(done, "media_storage runs, after the install").get("skipped") is not True
    assert len(_executed_on_host(done)) == 3
