"""The ocfs2_cluster role, applied by ansible-playbook to this host, into a temporary root.

This kernel has no OCFS2 cluster stack, so o2cb cannot go online here: the role runs with
ocfs2_cluster_manage_service: false (starting o2cb, `o2cb register-cluster` and the read-back of
configfs are the lab's to prove), and cluster.conf, /etc/default/o2cb, the running o2cb (configfs)
and the mount table are files under the test's own directory. ocfs2-tools' o2cb reads every
cluster.conf the role writes; `mounted.ocfs2 -f` runs for real, on a loop device whose slot map says
a node has it mounted.

The play runs on localhost; the other members (node2...) are inventory hosts outside the run,
with their node names in ocfs2_cluster_node_name, as a --limit run or a new node's sees them.

Proves: check mode writes nothing, a real run writes both files (cluster.conf byte for byte what
o2cb add-cluster/add-node write), a second run changes nothing; numbers stay when hosts are added,
reordered and removed, and a freed number is reused only in a later run; a bad address fails
naming the host and writes nothing; /etc/default/o2cb keeps its other lines; a running o2cb that
disagrees with the file, or runs another cluster, is refused; a node with a volume mounted is not
removed; check mode on a host without ocfs2-tools says what it skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CLUSTER = "itest"
PLAY = """\
- name: ocfs2_cluster role into a temporary root
  hosts: localhost
  gather_facts: false
  roles:
    - role: flexvdi.storage.ocfs2_cluster
"""
NODENAME = os.uname().nodename
ADDRESSES = {
    "localhost": "10.253.2.11",
    "node2": "10.253.2.12",
    "node3": "10.253.2.13",
    "node4": "10.253.2.14",
    "node5": "10.253.2.15",
}


def _recap(stdout: str) -> dict[str, int]:
    found = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout)
    assert found, stdout[-3000:]
    return {k: int(v) for k, v in zip(("ok", "changed", "unreachable", "failed"), found.groups())}


def _o2cb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["o2cb", *args], capture_output=True, text=True, check=False)


class ClusterLab:
    """A temporary root for the role: its files, a fake configfs and mount table, an inventory."""

    def __init__(self, base: Path, run_playbook) -> None:
        self.base = base
        self.root = base / "root"  # stands for / (tmp_paths has an etc/ of its own)
        self.conf = self.root / "etc" / "ocfs2" / "cluster.conf"
        self.defaults = self.root / "etc" / "default" / "o2cb"
        self.configfs = base / "configfs"
        self.configfs.mkdir()
        self.mountinfo = base / "mountinfo"
        self.mountinfo.write_text(Path("/proc/self/mountinfo").read_text())
        self.inventory = base / "inventory.yml"
        self.addresses = dict(ADDRESSES)
        self.more_hostvars = {}
        self._run_playbook = run_playbook

    def run(
        self,
        hosts: list[str],
        check: bool = False,
        packages: list[str] | None = None,
        extra_vars: dict | None = None,
        **kwargs,
    ):
        hostvars = {name: {"ocfs2_cluster_address": address} for name, address in self.addresses.items()}
        hostvars["localhost"].update(ansible_connection="local", ansible_python_interpreter=sys.executable)
        for name in hostvars:
            if name != "localhost":
                hostvars[name]["ocfs2_cluster_node_name"] = name
            hostvars[name].update(self.more_hostvars.get(name, {}))
        self.inventory.write_text(yaml.safe_dump({"all": {"hosts": hostvars}}))
        extra_vars = {
            "ocfs2_cluster_hosts": hosts,
            "ocfs2_cluster_name": CLUSTER,
            "ocfs2_cluster_manage_service": False,
            "ocfs2_cluster_apt_cache_valid_time": 0,
            "ocfs2_cluster_packages": [] if packages is None else packages,
            "ocfs2_cluster_config_path": str(self.conf),
            "ocfs2_cluster_defaults_path": str(self.defaults),
            "__ocfs2_cluster_configfs": str(self.configfs),
            "__ocfs2_cluster_mountinfo": str(self.mountinfo),
            **(extra_vars or {}),
        }
        return self._run_playbook(PLAY, extra_vars=extra_vars, check=check, inventory=self.inventory, **kwargs)

    def numbers(self) -> dict[str, int]:
        """name -> number of every node of the cluster, as ocfs2-tools' o2cb reads the file."""
        listed = _o2cb(f"--config-file={self.conf}", "list-nodes", CLUSTER)
        assert listed.returncode == 0, listed.stderr
        found = {}
        for stanza in listed.stdout.split("node:")[1:]:
            attrs = dict(re.findall(r"^\t(\w+) = (.*)$", stanza, re.M))
            found[attrs["name"]] = int(attrs["number"])
        return found

    def running(self, nodes: dict[str, int], cluster: str = CLUSTER, **timeouts: int) -> None:
        """Make the fake configfs look like o2cb running `cluster` with these nodes (name -> number)."""
        base = self.configfs / "cluster" / cluster
        for name, number in nodes.items():
            node = base / "node" / name
            node.mkdir(parents=True)
            address = self.addresses["localhost" if name == NODENAME else name]
            for attr, value in (
                ("num", number),
                ("ipv4_address", address),
                ("ipv4_port", 7777),
                ("local", int(name == NODENAME)),
            ):
                (node / attr).write_text(f"{value}\n")
        (base / "heartbeat").mkdir(parents=True, exist_ok=True)
        for attr, value in timeouts.items():
            (base / attr.replace("heartbeat_", "heartbeat/dead_")).write_text(f"{value}\n")


@pytest.fixture
def lab(tmp_paths, run_playbook):
    if os.geteuid() != 0:
        pytest.fail("test_ocfs2_cluster needs root: run the integration tier as root", pytrace=False)
    if not shutil.which("o2cb") or not shutil.which("mounted.ocfs2"):
        pytest.fail("ocfs2-tools is not installed: run `make setup`", pytrace=False)
    return ClusterLab(Path(tmp_paths.root).parent, run_playbook)


def _o2cb_written(path: Path, nodes: list[tuple[str, str, int]]) -> str:
    """cluster.conf as ocfs2-tools' own o2cb writes it for these nodes (name, address, number)."""
    assert _o2cb(f"--config-file={path}", "add-cluster", CLUSTER).returncode == 0
    for name, address, number in nodes:
        added = _o2cb(
            f"--config-file={path}",
            "add-node",
            CLUSTER,
            name,
            "--ip",
            address,
            "--port",
            "7777",
            "--number",
            str(number),
        )
        assert added.returncode == 0, added.stderr
    return path.read_text()


def test_check_mode_real_run_and_again(lab):
    checked = lab.run(["localhost", "node2"], check=True, packages=["ocfs2-tools"])
    assert checked.rc == 0, checked.stdout[-3000:]
    assert _recap(checked.stdout)["changed"] > 0
    assert not lab.root.exists(), "check mode wrote something"

    first = lab.run(["localhost", "node2"], packages=["ocfs2-tools"])
    assert first.rc == 0, first.stdout[-3000:]
    assert _recap(first.stdout)["changed"] > 0
    expected = _o2cb_written(
        lab.base / "o2cb-written.conf", [(NODENAME, "10.253.2.11", 1), ("node2", "10.253.2.12", 2)]
    )
    assert lab.conf.read_text() == expected, "not the file o2cb itself writes"
    assert lab.numbers() == {NODENAME: 1, "node2": 2}
    assert oct(lab.conf.stat().st_mode & 0o777) == "0o644"
    defaults = lab.defaults.read_text()
    for line in ("O2CB_ENABLED=true", f"O2CB_BOOTCLUSTER={CLUSTER}", "O2CB_HEARTBEAT_THRESHOLD=31", "O2CB_IDLE_TIMEOUT_MS=30000",
                 "O2CB_KEEPALIVE_DELAY_MS=2000", "O2CB_RECONNECT_DELAY_MS=2000"):  # fmt: skip
        assert f"\n{line}\n" in defaults
    assert defaults.startswith("#\n# This is a configuration file for automatic startup of the O2CB\n")

    again = lab.run(["localhost", "node2"], packages=["ocfs2-tools"])
    assert again.rc == 0 and _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
    checked = lab.run(["localhost", "node2"], check=True)
    assert checked.rc == 0 and _recap(checked.stdout)["changed"] == 0, checked.stdout[-3000:]


def test_numbers_stay_as_hosts_come_and_go(lab):
    assert lab.run(["localhost", "node3"]).rc == 0
    assert lab.numbers() == {NODENAME: 1, "node3": 2}

    grown = lab.run(["node4", "node3", "localhost"])  # added, and the list reordered
    assert grown.rc == 0, grown.stdout[-3000:]
    assert lab.numbers() == {NODENAME: 1, "node3": 2, "node4": 3}

    # node3 leaves: mounted.ocfs2 -f runs for real and finds nothing of it mounted
    shrunk = lab.run(["node4", "localhost"])
    assert shrunk.rc == 0, shrunk.stdout[-3000:]
    assert "mounted.ocfs2" in shrunk.stdout
    assert lab.numbers() == {NODENAME: 1, "node4": 3}

    # a number freed by an earlier run is the lowest free one now
    assert lab.run(["node5", "node4", "localhost"]).rc == 0
    assert lab.numbers() == {NODENAME: 1, "node4": 3, "node5": 2}


def test_bad_address_fails_naming_the_host_and_writes_nothing(lab):
    lab.addresses["node2"] = "10.253.2.300"
    failed = lab.run(["localhost", "node2"])
    assert failed.rc != 0
    assert "ocfs2_cluster_address of host node2 is '10.253.2.300', not an IPv4 address" in failed.stdout
    assert _recap(failed.stdout)["changed"] == 0
    assert not lab.root.exists()

    lab.addresses["node2"] = "10.253.2.12"
    assert lab.run(["localhost", "node2"]).rc == 0
    before = (lab.conf.read_bytes(), lab.defaults.read_bytes())
    lab.addresses["node2"] = "fe80::12"
    failed = lab.run(["localhost", "node2"])
    assert failed.rc != 0 and "ocfs2_cluster_address of host node2 is 'fe80::12'" in failed.stdout
    assert (lab.conf.read_bytes(), lab.defaults.read_bytes()) == before

    # A public address: o2cb has no authentication, so it is refused, before anything, unless overridden.
    lab.addresses["node2"] = "203.0.113.12"
    failed = lab.run(["localhost", "node2"])
    assert failed.rc != 0
    assert (
        "ocfs2_cluster_address of host node2 is 203.0.113.12, a public address: o2cb has no authentication"
        in failed.stdout
    )
    assert "set ocfs2_cluster_allow_public: true for node2" in failed.stdout
    assert _recap(failed.stdout)["changed"] == 0
    assert (lab.conf.read_bytes(), lab.defaults.read_bytes()) == before
    lab.more_hostvars = {"node2": {"ocfs2_cluster_allow_public": True}}
    allowed = lab.run(["localhost", "node2"])
    assert allowed.rc == 0, allowed.stdout[-3000:]
    assert "203.0.113.12" in lab.conf.read_text()


def test_existing_defaults_keep_their_other_lines(lab):
    lab.defaults.parent.mkdir(parents=True)
    old = "# set by hand\nO2CB_ENABLED=false\nO2CB_STACK=o2cb\nexport O2CB_BOOTCLUSTER=ocfs2\nO2CB_IDLE_TIMEOUT_MS=60000\n"
    lab.defaults.write_text(old)
    done = lab.run(["localhost"])
    assert done.rc == 0, done.stdout[-3000:]
    assert lab.defaults.read_text() == (
        "# set by hand\nO2CB_ENABLED=true\nO2CB_STACK=o2cb\nO2CB_BOOTCLUSTER=itest\nO2CB_IDLE_TIMEOUT_MS=30000\n"
        "O2CB_HEARTBEAT_THRESHOLD=31\nO2CB_KEEPALIVE_DELAY_MS=2000\nO2CB_RECONNECT_DELAY_MS=2000\n"
    )
    backups = [p for p in lab.defaults.parent.iterdir() if p.name.startswith("o2cb.") and p.name.endswith("~")]
    assert [b.read_text() for b in backups] == [old]


def test_running_o2cb_is_read(lab):
    """configfs is a source of numbers: a file that disagrees with it is refused; timeouts it runs
    with that differ from the role's are reported, not applied."""
    assert lab.run(["localhost", "node2"]).rc == 0
    before = lab.conf.read_bytes()
    lab.running({NODENAME: 1, "node2": 3})
    refused = lab.run(["localhost", "node2"])
    assert refused.rc != 0
    assert (
        f"Node node2 of cluster {CLUSTER} is number 2 in localhost's {lab.conf} but 3 in the running o2cb of localhost"
        in refused.stdout
    )
    assert lab.conf.read_bytes() == before

    shutil.rmtree(lab.configfs / "cluster")
    lab.running({NODENAME: 1, "node2": 2}, idle_timeout_ms=10000, heartbeat_threshold=31)
    told = lab.run(["localhost", "node2"])
    assert told.rc == 0, told.stdout[-3000:]
    assert f"o2cb runs cluster {CLUSTER} on localhost with other timeouts than {lab.defaults} has: " in told.stdout
    assert "has: idle_timeout_ms 10000 (configured 30000). o2cb takes them when it starts" in told.stdout
    assert "The role never restarts a running o2cb." in told.stdout

    shutil.rmtree(lab.configfs / "cluster")
    lab.running({NODENAME: 1}, cluster="other")
    refused = lab.run(["localhost", "node2"])
    assert refused.rc != 0 and "Host localhost runs o2cb cluster other" in refused.stdout
    assert lab.conf.read_bytes() == before


def _slot_map_says_mounted(device: str, node_number: int) -> None:
    """Format device for the cluster and write slot 0 of its slot map as taken by node_number, as a
    node's mount would (the kernel here cannot mount it)."""
    # mkfs.ocfs2 of a cluster volume ends with an error here (no cluster stack to ask), after writing
    # a complete file system: what counts is that ocfs2-tools read it back.
    subprocess.run(
        ["mkfs.ocfs2", "-q", "-F", "-N", "4", "-L", "itest", "--cluster-stack=o2cb", f"--cluster-name={CLUSTER}", device],
        input="y\n", capture_output=True, text=True, check=False,
    )  # fmt: skip
    stat = subprocess.run(
        ["debugfs.ocfs2", "-R", "stat //slot_map", device], capture_output=True, text=True, check=True
    )
    block = int(re.search(r"^\s*0\s+0\s+\d+\s+(\d+)\s+0x0", stat.stdout, re.M).group(1))
    size = int(re.search(r"Block Size Bits: (\d+)", subprocess.run(
        ["debugfs.ocfs2", "-R", "stats", device], capture_output=True, text=True, check=True).stdout).group(1))  # fmt: skip
    with open(device, "r+b") as handle:
        handle.seek(block << size)
        handle.write(struct.pack("<B3xI", 1, node_number))  # extended slot map: es_valid, es_node_num
    shown = subprocess.run(["mounted.ocfs2", "-f", device], capture_output=True, text=True, check=False).stdout
    assert re.search(rf"^{re.escape(device)}\s+o2cb\s+{CLUSTER}\s+{node_number}$", shown, re.M), shown


def test_a_node_with_a_volume_mounted_does_not_leave(lab, loopdev):
    assert lab.run(["localhost", "node2"]).rc == 0
    before = lab.conf.read_bytes()

    device = loopdev("none")
    _slot_map_says_mounted(device, 2)
    refused = lab.run(["localhost"])
    assert refused.rc != 0
    assert (
        f"Node node2 (number 2) is to leave cluster {CLUSTER}, but mounted.ocfs2 -f on localhost shows it has {device} mounted"
        in refused.stdout
    ), refused.stdout[-3000:]
    assert lab.conf.read_bytes() == before

    # this host's own node leaves while its mount table has an OCFS2 volume of the cluster
    with lab.mountinfo.open("a") as handle:
        handle.write(
            "900 1 253:7 / /var/lib/flexvdi/volumes/S/V rw,relatime shared:9 - ocfs2 /dev/sdz rw,_netdev,heartbeat=local\n"
        )
    refused = lab.run(["node2"])
    assert refused.rc != 0
    assert (
        f"Node {NODENAME} (host localhost) is to leave cluster {CLUSTER}, but it has OCFS2 volumes mounted: "
        "/dev/sdz on /var/lib/flexvdi/volumes/S/V" in refused.stdout
    ), refused.stdout[-3000:]
    assert lab.conf.read_bytes() == before


def test_check_mode_without_ocfs2_tools_says_what_it_skipped(lab):
    checked = lab.run(["localhost", "node2"], check=True, hide_commands=["o2cb", "mounted.ocfs2"])
    assert checked.rc == 0, checked.stdout[-3000:]
    assert "check mode: ocfs2-tools is not installed yet (o2cb, mounted.ocfs2 not found)" in checked.stdout
    assert not lab.root.exists()


def test_a_member_that_is_not_debian_is_refused_before_anything_is_written(lab):
    fedora = 'NAME="Fedora Linux"\nID=fedora\nPRETTY_NAME="Fedora Linux 40 (Server Edition)"\n'
    refused = lab.run(["localhost", "node2"], replace_files={"/etc/os-release": fedora})
    assert refused.rc != 0
    assert "localhost runs Fedora Linux 40 (Server Edition): the ocfs2_cluster role supports Debian" in refused.stdout
    assert not lab.root.exists()


def test_a_slice_of_a_sliced_awx_job_is_refused_before_anything_is_written(lab):
    """AWX runs a template with Job Slicing above 1 as a workflow job of the same name: each slice
    sees part of the members, and cluster.conf planned from them would drop the others."""
    awx = {
        "awx_job_launch_type": "workflow",
        "awx_job_template_name": "flexvdi storage",
        "awx_workflow_job_id": 41,
        "awx_workflow_job_name": "flexvdi storage",
    }
    refused = lab.run(["localhost", "node2"], extra_vars=awx)
    assert refused.rc != 0
    assert "looks like one slice of an AWX job template with Job Slicing above 1 (launched by workflow job 41" in (
        refused.stdout
    ), refused.stdout[-3000:]
    assert not lab.root.exists()

    # a workflow named otherwise, or a run said not to be a slice, goes on
    for other in ({"awx_workflow_job_name": "nightly"}, {"flexvdi_storage_not_sliced": True}):
        done = lab.run(["localhost", "node2"], extra_vars={**awx, **other})
        assert done.rc == 0, done.stdout[-3000:]
        assert lab.conf.exists()
