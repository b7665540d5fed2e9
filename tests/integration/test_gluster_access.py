"""Who may mount a Gluster volume: only its storage's hosts and arbiter, tried for real from outside.

Four glusterd peers in network namespaces on a bridge (tests/integration/_glusternet.py): node1 and
node2 are the storage's hosts, node3 the arbiter, node4 a machine on the same network that is none
of them (outside the trusted pool at first). The volume's auth.allow is set by the module; then each
peer tries a FUSE mount from node1's glusterd, as any client would (a host's mount of its own
address fetches a trusted volume file from its own glusterd, which auth.allow does not restrict; a
mount through another server, as backup-volfile-servers does when a host's glusterd is down, is
checked like an outsider's). node4 is refused; once the declaration adds it to a storage (through
the storage role, the one-pass path), the next converge lets it in.
"""

from __future__ import annotations

import textwrap

import pytest
from _glusternet import gluster_net
from test_gluster_volume import (
    BASE,
    GV,
    _find_volume,
    _PeerRunner,
    _role_play,
    _storage_args,
    _wait_pool,
    brick,
    recap,
    run,
    run_many,
)

from ansible_collections.flexvdi.storage.plugins.module_utils import _gluster_cli


@pytest.fixture(scope="module")
def net():
    with gluster_net(BASE, "gluster-access-", 4, ("volumes", "results", "clients")) as glnet:
        yield glnet


def try_mount(net, peer, server, volume):
    """(mounted and writable, why not): a FUSE mount of ``server:/volume`` from ``peer``, unmounted after.

    mount.glusterfs may answer 0 and its client shut down a moment later (authentication fails after
    the mount call returned): only a mount that is there and takes a write counts.
    """
    mount_point = net.base / "clients" / f"{peer.name}-{volume}-{server}"
    mount_point.mkdir(exist_ok=True)
    log_file = "/var/log/glusterfs/" + str(mount_point).strip("/").replace("/", "-") + ".log"
    peer.run("rm", "-f", log_file)  # this attempt's words only
    proc = peer.run("mount", "-t", "glusterfs", f"{server}:/{volume}", str(mount_point), timeout=120)
    mounted = str(mount_point) in peer.mounts()
    try:
        if mounted:
            probe = mount_point / f"from-{peer.name}"
            wrote = peer.run("sh", "-c", f"echo {peer.name} > {probe} && cat {probe}")
            if wrote.stdout == f"{peer.name}\n":
                return True, ""
        log = peer.run("grep", "-ih", "authentication failed", log_file).stdout
        return False, f"mount rc={proc.returncode} {proc.stdout}{proc.stderr} {log[-600:]}"
    finally:
        if str(mount_point) in peer.mounts():
            peer.run("umount", str(mount_point))


def refused(result):
    allowed, why = result
    return not allowed and "authentication failed" in why.lower()


def auth_allow(peer, volume):
    info = _gluster_cli.volume_info(_PeerRunner(peer), volume, "test")
    return info["options"].get("auth.allow")


def test_only_the_storages_hosts_and_arbiter_may_mount(run_playbook, net):
    node1, node2, node3, node4 = net.peers
    for peer in (node2, node3):
        node1.gluster("peer", "probe", peer.address)
    _wait_pool(node1, 2)
    setup = [("flexvdi.storage.image_storage", _storage_args(net, "Acc", ["node1", "node2"]), None)]
    for results in run_many(run_playbook, net, setup, "node1:node2"):
        assert not any(r.get("failed") for r in results.values()), results

    args = {"image_storage": "Acc", "name": "gv", "brick": brick(net), "arbiter": "node3"}
    checked = run(run_playbook, net, GV, args, hosts="node1:node2", check=True)
    wanted = f"auth.allow={node1.address},{node2.address},{node3.address}"
    assert wanted in checked["node1"]["actions"][1], checked["node1"]["actions"]
    real = run(run_playbook, net, GV, args, hosts="node1:node2")
    for host in ("node1", "node2"):
        assert not real[host].get("failed"), real[host].get("msg")
        assert real[host]["actions"] == checked[host]["actions"]
        assert real[host]["volume"]["auth_allow"] == [node1.address, node2.address, node3.address]
    assert auth_allow(node1, "gv") == ",".join(p.address for p in (node1, node2, node3))
    again = run(run_playbook, net, GV, args, hosts="node1:node2")
    assert not any(r["changed"] for r in again.values()), again

    info = run(run_playbook, net, "flexvdi.storage.storage_info", {}, hosts="node2")["node2"]
    assert _find_volume(info, "Acc", "gv")["auth_allow"] == [node1.address, node2.address, node3.address]

    # The hosts' own mounts (the module's) work; through another server, a host and the arbiter
    # are let in by their address, and node4, on the same network, is refused.
    mount_point = str(net.base / "volumes" / "Acc" / "gv")
    assert node1.run("sh", "-c", f"echo ok > {mount_point}/probe && cat {mount_point}/probe").stdout == "ok\n"
    assert try_mount(net, node2, node1.address, "gv") == (True, "")
    assert try_mount(net, node3, node1.address, "gv") == (True, "")
    assert refused(outcome := try_mount(net, node4, node1.address, "gv")), outcome
    assert refused(outcome := try_mount(net, node4, node2.address, "gv")), outcome

    # An adopted volume opened by hand is closed again by the next converge.
    node1.gluster("volume", "reset", "gv", "auth.allow")
    assert try_mount(net, node4, node1.address, "gv") == (True, "")
    fixed = run(run_playbook, net, GV, args, hosts="node1:node2")
    assert fixed["node1"]["changed"] and fixed["node1"]["actions"] == [
        f"set 1 option(s) of Gluster volume gv: {wanted}"
    ]
    assert not fixed["node2"]["changed"], fixed["node2"]["actions"]
    assert refused(outcome := try_mount(net, node4, node1.address, "gv")), outcome

    # A user's '*' is honoured, warned about, shown, and the report flags it.
    opened = run(run_playbook, net, GV, dict(args, options={"auth.allow": "*"}), hosts="node1:node2")
    assert opened["node1"]["changed"] and "auth.allow=*" in opened["node1"]["actions"][0]
    assert any("options auth.allow is '*'" in w for w in opened["node1"]["warnings"])
    assert opened["node1"]["volume"]["auth_allow"] == ["*"]
    report = run_playbook(_report_play(net), inventory=net.inventory_path)
    assert report.rc == 0, report.stdout[-3000:]
    assert "volume Acc/gv is open to every address (auth.allow *" in report.stdout
    closed = run(run_playbook, net, GV, args, hosts="node1:node2")
    assert closed["node1"]["changed"] and closed["node1"]["volume"]["auth_allow"][0] == node1.address


def test_a_host_added_to_the_declaration_may_mount_after_the_next_converge(run_playbook, net):
    node1, node2, node3, node4 = net.peers
    volume = {"name": "gw", "type": "gluster", "brick": brick(net, "gw"), "force": True}
    two = run_playbook(_role_play(net, volume, ["node1", "node2"], "Grow"), inventory=net.inventory_path)
    assert two.rc == 0, two.stdout[-3000:]
    assert auth_allow(node1, "gw") == f"{node1.address},{node2.address}"
    for outsider in (node3, node4):  # node3 is in the pool, but no host of this storage
        assert refused(outcome := try_mount(net, outsider, node1.address, "gw")), outcome

    node1.gluster("peer", "probe", node4.address)
    _wait_pool(node1, 3)
    three = run_playbook(_role_play(net, volume, ["node1", "node2", "node4"], "Grow"), inventory=net.inventory_path)
    assert three.rc == 0, three.stdout[-3000:]
    assert auth_allow(node1, "gw") == f"{node1.address},{node2.address},{node4.address}"
    assert str(net.base / "volumes" / "Grow" / "gw") in node4.mounts()
    assert try_mount(net, node4, node1.address, "gw") == (True, "")
    assert refused(outcome := try_mount(net, node3, node1.address, "gw")), outcome
    assert recap(
        run_playbook(_role_play(net, volume, ["node1", "node2", "node4"], "Grow"), inventory=net.inventory_path).stdout
    ) == {
        "node1": 0,
        "node2": 0,
        "node4": 0,
    }


def _report_play(net):
    return textwrap.dedent(
        f"""\
        - hosts: node1:node2
          gather_facts: false
          tasks:
            - name: Read each host's storage
              flexvdi.storage.storage_info:
                registry: {net.base}/etc/storage.json
                fstab: {net.base}/etc/fstab
              register: info
            - name: Print the report
              ansible.builtin.debug:
                msg: "{{{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'info')))
                          | flexvdi.storage.storage_report }}}}"
              run_once: true
        """
    )
