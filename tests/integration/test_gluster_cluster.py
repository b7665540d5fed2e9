"""The gluster_cluster role for real: three glusterd peers in network namespaces (see _glusternet.py).

Packages are not installed and glusterd is not started by the role here (the harness runs one
glusterd per namespace, without systemd): what is proven is the probing (who probes, only the
peers not yet in, an unreachable peer named) and the brick filesystems (a blank device
formatted XFS with 512-byte inodes and mounted, a device with data refused naming force).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest
from _executions import JSON_OUTPUT, changed, executions
from _glusternet import GlusterNet, leftovers

from ansible_collections.flexvdi.storage.plugins.module_utils import _gluster_cli

BASE = Path("/tmp/flexvdi-integration")
BY_ID = "/dev/disk/by-id"


def _run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def net():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, loop devices)")
    stale = leftovers()
    if stale:
        pytest.fail(f"an earlier run left {', '.join(stale)}: delete them (ip netns delete / ip link delete)")
    BASE.mkdir(mode=0o755, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="gluster-cluster-", dir=BASE))
    base.chmod(0o755)
    glnet = GlusterNet(base, 3)
    glnet.devices, glnet.links = [], []
    try:
        glnet.start()
        yield glnet
    finally:
        problems = glnet.stop()
        for link in glnet.links:
            if os.path.islink(link):
                os.unlink(link)
        for device, image in glnet.devices:
            if _run("losetup", "-d", device).returncode != 0:
                problems.append(f"loop device {device}")
            image.unlink(missing_ok=True)
        if not problems:
            subprocess.run(["rm", "-rf", "--one-file-system", str(base)], check=False)
        if problems:
            pytest.fail(f"gluster teardown left behind: {', '.join(problems)}", pytrace=False)


def _device(net, mkfs=None):
    """A /dev/disk/by-id/ name of a fresh 300 MB loop device (blank, or with ``mkfs``)."""
    image = net.base / f"disk-{secrets.token_hex(3)}.img"
    with open(image, "wb") as handle:
        handle.truncate(300 * 2**20)
    device = _run("losetup", "--find", "--show", str(image)).stdout.strip()
    assert device, "losetup failed"
    net.devices.append((device, image))
    if mkfs:
        subprocess.run([*mkfs, device], check=True, capture_output=True)
    os.makedirs(BY_ID, exist_ok=True)
    link = f"{BY_ID}/flexvdi-test-{secrets.token_hex(4)}"
    os.symlink(device, link)
    net.links.append(link)
    return link, device


def play(net, hosts, bricks=None, **overrides):
    base = net.base
    role_vars = {
        "gluster_cluster_hosts": hosts,
        "gluster_cluster_packages": [],
        "gluster_cluster_manage_service": False,
        "gluster_cluster_probe_retries": 5,
        **overrides,
    }
    return textwrap.dedent(
        f"""\
        - hosts: node1:node2:node3
          gather_facts: false
          module_defaults:
            group/flexvdi.storage.all:
              registry: {base}/etc/storage.json
              fstab: {base}/etc/fstab
          tasks:
            - name: Per-host brick declarations
              ansible.builtin.set_fact:
                gluster_cluster_bricks: "{{{{ __bricks[inventory_hostname] | default([]) }}}}"
              vars:
                __bricks: {json.dumps(bricks or {})}
            - name: The role
              ansible.builtin.include_role:
                name: flexvdi.storage.gluster_cluster
              vars: {json.dumps(role_vars)}
        """
    )


def recap(stdout):
    return {m[0]: int(m[1]) for m in re.findall(r"^(node\d)\s+: ok=\d+\s+changed=(\d+)", stdout, re.M)}


def pool(peer):
    return {
        p["hostname"]: (p["in_cluster"], p["connected"])
        for p in _gluster_cli.peers(_gluster_cli.parse(peer.run("gluster", "--xml", "pool", "list").stdout))
        if not p["self"]
    }


def blkid(device):
    proc = _run("blkid", "-p", "-o", "export", device)
    return {} if proc.returncode == 2 else dict(line.split("=", 1) for line in proc.stdout.split())


def test_probe_and_brick_filesystem_then_unchanged(run_playbook, net):
    node1, node2, node3 = net.peers
    inventory = net.inventory(net.base / "inventory.json")
    link, device = _device(net)
    path = str(net.base / "brickfs")
    bricks = {"node1": [{"device": link, "path": path}]}

    checked = run_playbook(play(net, ["node1", "node2", "node3"], bricks), check=True, inventory=inventory)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert pool(node1) == {} and blkid(device) == {}, "check mode probes and formats nothing"

    real = run_playbook(play(net, ["node1", "node2", "node3"], bricks), inventory=inventory)
    assert real.rc == 0, real.stdout[-3000:]
    assert recap(real.stdout)["node1"] >= 2
    assert pool(node1) == {node2.address: (True, True), node3.address: (True, True)}
    assert pool(node2)[node1.address] == (True, True) or pool(node2).get("10.252.0.11") == (True, True)
    sig = blkid(device)
    assert (sig.get("TYPE"), sig.get("LABEL")) == ("xfs", _gluster_cli.BRICK_LABEL)
    assert "isize=512" in _run("nsenter", "-t", str(node1.holder.pid), "-m", "xfs_info", path).stdout
    assert node1.mounts()[path][0] == "xfs"
    assert path not in node2.mounts()
    assert any(line.split()[:3] == [link, path, "xfs"] for line in node1.read(f"{net.base}/etc/fstab").splitlines())

    again = run_playbook(play(net, ["node1", "node2", "node3"], bricks), inventory=inventory)
    assert again.rc == 0, again.stdout[-3000:]
    assert recap(again.stdout) == {"node1": 0, "node2": 0, "node3": 0}, "a member already in is not probed again"


def test_a_rerun_executes_the_probe_and_the_bricks_only(run_playbook, net):
    """A run that changes nothing: per member one probe (packages from dpkg's status, glusterd,
    the pool), plus the brick module per brick; no apt, no second pool read, no peer probe."""
    node1 = net.peers[0]
    inventory = net.inventory(net.base / "inventory.json")
    link, _device_path = _device(net)
    bricks = {"node1": [{"device": link, "path": str(net.base / "brickfs-noop")}]}
    # Installed on this host (the peers share its /var/lib/dpkg): the probe finds them, apt never runs.
    packages = ["glusterfs-server", "glusterfs-client"]
    text = play(net, ["node1", "node2", "node3"], bricks, gluster_cluster_packages=packages)
    first = run_playbook(text, inventory=inventory)
    assert first.rc == 0, first.stdout[-3000:]
    before = pool(node1)
    again = run_playbook(text, inventory=inventory, env=JSON_OUTPUT)
    assert again.rc == 0, again.stdout[-3000:]
    assert changed(again.stdout) == {"node1": 0, "node2": 0, "node3": 0}, again.stdout[-3000:]
    ran = executions(again.stdout)
    probe = "Read this member's packages, glusterd and trusted pool"
    assert ran == {
        "node1": [probe, "Prepare this host's brick filesystems (a blank device only, unless force)"],
        "node2": [probe],
        "node3": [probe],
    }, ran
    assert all(len(tasks) <= 2 for tasks in ran.values())
    assert pool(node1) == before


def test_a_device_with_data_is_refused_naming_force(run_playbook, net):
    inventory = net.inventory(net.base / "inventory.json")
    link, device = _device(net, mkfs=["mkfs.ext4", "-q", "-F"])
    before = blkid(device)
    path = str(net.base / "brickfs2")
    result = run_playbook(
        play(net, ["node1", "node2", "node3"], {"node2": [{"device": link, "path": path}]}), inventory=inventory
    )
    assert result.rc != 0
    assert f"brick device {link} carries ext4" in result.stdout and "set force: true" in result.stdout
    assert blkid(device) == before and path not in net.peers[1].mounts()
    assert not os.path.exists(path)


def test_an_unreachable_peer_is_named(run_playbook, net):
    inventory = net.inventory(net.base / "inventory.json", more={"node4": "10.252.0.99"})
    result = run_playbook(play(net, ["node1", "node2", "node3", "node4"]), inventory=inventory)
    assert result.rc != 0
    assert "peer node4 (10.252.0.99) could not be probed from node1" in result.stdout, result.stdout[-3000:]
    assert "10.252.0.99" not in pool(net.peers[0])


def test_a_slice_of_a_sliced_awx_job_probes_nobody(run_playbook, net):
    """Slices run at once, each with part of the members: each could make a pool of its own."""
    node1 = net.peers[0]
    inventory = net.inventory(net.base / "inventory.json", more={"node4": "10.252.0.99"})
    before = pool(node1)
    awx = {
        "awx_job_launch_type": "workflow",
        "awx_job_template_name": "flexvdi storage",
        "awx_workflow_job_id": 41,
        "awx_workflow_job_name": "flexvdi storage",
    }
    result = run_playbook(play(net, ["node1", "node2", "node3", "node4"]), inventory=inventory, extra_vars=awx)
    assert result.rc != 0
    assert "looks like one slice of an AWX job template with Job Slicing above 1" in result.stdout, result.stdout[
        -3000:
    ]
    assert "could not be probed" not in result.stdout
    assert pool(node1) == before


def test_a_public_pool_address_is_refused_before_anything(run_playbook, net):
    inventory = net.inventory(net.base / "inventory.json", more={"node4": "203.0.113.9"})
    link, device = _device(net)
    path = str(net.base / "brickfs-public")
    before = pool(net.peers[0])
    result = run_playbook(
        play(net, ["node1", "node2", "node3", "node4"], {"node2": [{"device": link, "path": path}]}),
        inventory=inventory,
    )
    assert result.rc != 0
    assert "gluster_cluster_address of host node4 is 203.0.113.9, a public address" in result.stdout, result.stdout[
        -3000:
    ]
    assert "gluster_cluster_allow_public: true for node4" in result.stdout
    assert blkid(device) == {} and not os.path.exists(path), "nothing was formatted or mounted"
    assert pool(net.peers[0]) == before
