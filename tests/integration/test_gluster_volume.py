"""gluster_volume for real: three glusterd peers in network namespaces on a bridge, FUSE mounts.

glusterd refuses loopback bricks, so each peer is a network and mount namespace of its own
(tests/integration/_glusternet.py) with its own glusterd, registry, fstab and brick directory
(on one loop XFS, a directory per peer, at the same path in every peer). Ansible reaches each
peer through the local connection with an interpreter that enters its namespaces, so every
module run sees that peer's glusterd, mounts and files, as on three hosts.

node1 and node2 are the image storage's hosts (data bricks), node3 the arbiter. The refusals run
first, before the peers are probed; then the volume is created, mounted, left alone by a
second run, found stale when its client dies and mounted again, and removed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from _glusternet import gluster_net

from ansible_collections.flexvdi.storage.plugins.module_utils import _gluster_cli
from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError

GV = "flexvdi.storage.gluster_volume"
BASE = Path("/tmp/flexvdi-integration")


def _run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def net():
    with gluster_net(BASE, "gluster-", 3, ("volumes", "results")) as glnet:
        yield glnet


def _playbook(net, tasks, hosts="all"):
    """A play on ``hosts`` running each (module, args, on) of ``tasks`` where the host is in ``on``."""
    base = net.base
    body = []
    for index, (module, args, on) in enumerate(tasks):
        when = f"\n  when: inventory_hostname in {json.dumps(on)}" if on else ""
        body.append(
            f"""- name: Task {index} under test
  {module}: {json.dumps(args)}
  register: result
  ignore_errors: true{when}
- name: Keep each host's result of task {index} where the test reads it
  ansible.builtin.copy:
    content: "{{{{ result | to_json }}}}"
    dest: "{base}/results/{{{{ inventory_hostname }}}}-{index}.json"
    mode: "0644"
  check_mode: false{when}"""
        )
    play = textwrap.dedent(
        f"""\
        - hosts: {hosts}
          gather_facts: false
          module_defaults:
            group/flexvdi.storage.all:
              registry: {base}/etc/storage.json
              fstab: {base}/etc/fstab
          tasks: []
        """
    )
    return play.replace("tasks: []", "tasks:\n" + textwrap.indent("\n".join(body), "    "))


def run_many(run_playbook, net, tasks, hosts="all", check=False):
    """[{host: result}] of each (module, args, on) of ``tasks``, in one playbook run."""
    for found in (net.base / "results").iterdir():
        found.unlink()
    proc = run_playbook(_playbook(net, tasks, hosts), check=check, inventory=net.inventory_path)
    found = [{} for _task in tasks]
    for path in (net.base / "results").iterdir():
        host, index = path.stem.rsplit("-", 1)
        found[int(index)][host] = json.loads(path.read_text())
    assert all(found), f"a task ran on no host: {proc.stdout[-3000:]} {proc.stderr[-2000:]}"
    return found


def run(run_playbook, net, module, args, hosts="all", check=False):
    """{host: result} of ``module`` with ``args`` on ``hosts`` (each host's own namespaces)."""
    return run_many(run_playbook, net, [(module, args, None)], hosts, check)[0]


def _storage_args(net, name, hosts):
    return {"name": name, "hosts": hosts, "root": str(net.base / "volumes" / name)}


def state(net, volume="gv"):
    """Everything a gluster_volume run may touch, on every peer."""
    found = {}
    for peer in net.peers:
        info = peer.run("gluster", "--xml", "volume", "info").stdout
        try:
            names = [v["name"] for v in _gluster_cli.volumes(_gluster_cli.parse(info))]
        except StorageError:
            names = "glusterd down"
        found[peer.name] = {
            "registry": peer.read(f"{net.base}/etc/storage.json"),
            "fstab": peer.read(f"{net.base}/etc/fstab"),
            "mounts": {k: v for k, v in peer.mounts().items() if k.startswith(str(net.base / "volumes"))},
            "brick": peer.exists(f"{net.base}/bricks/{volume}"),
            "volumes": names,
            "tree": sorted(str(p) for p in (net.base / "volumes").rglob("*")),
        }
    return found


def brick(net, volume="gv"):
    return f"{net.base}/bricks/{volume}"


# --- refusals: nothing created, no brick directory, nothing mounted, registry and fstab as before --


def test_refusals_leave_nothing_behind(run_playbook, net):
    external = net.base / "volumes" / "ext"
    external.mkdir()
    setup = [
        ("flexvdi.storage.image_storage", _storage_args(net, "One", ["node1"]), ["node1"]),
        ("flexvdi.storage.image_storage", _storage_args(net, "Two", ["node1", "node2"]), None),
        (
            "flexvdi.storage.external_volume",
            {"image_storage": "Two", "name": "ext", "mount_point": str(external), "owner_qemu": True},
            None,
        ),
    ]
    for results in run_many(run_playbook, net, setup, "node1:node2"):
        assert not any(r.get("failed") for r in results.values()), results

    both = ["node1", "node2"]
    cases = [
        (["node1"], {"image_storage": "One", "brick": brick(net)}, "at least two hosts"),
        (both, {"image_storage": "Two", "brick": brick(net)}, "replica 2 without an arbiter is refused"),
        (both, {"image_storage": "Two", "brick": brick(net), "arbiter": "node3"}, "is not in the Gluster trusted pool"),
        (
            both,
            {"image_storage": "Two", "brick": str(external / "brick"), "arbiter": "node3"},
            "is inside volume ext of image storage Two",
        ),
        (
            both,
            {"image_storage": "Two", "brick": brick(net), "arbiter": "node3", "replica": 3},
            "replica 3 differs from the 2 data hosts",
        ),
    ]
    tasks = [(GV, dict(args, name="gv", create_timeout=0), on) for on, args, _message in cases]
    # All the refusals in one playbook (each task on its hosts), in check mode and for real:
    # every one fails on every host with its message, and nothing at all is left behind.
    for check in (True, False):
        before = state(net)
        found = run_many(run_playbook, net, tasks, "node1:node2", check=check)
        for (on, _args, message), results in zip(cases, found):
            assert sorted(results) == on
            for host in on:
                assert results[host].get("failed"), results[host]
                assert message in results[host]["msg"], results[host]["msg"]
                assert not results[host]["changed"]
        assert "split-brain" in found[1]["node1"]["msg"] and "force: true" in found[1]["node1"]["msg"]
        assert "peer node2 (10.252.0.12)" in found[2]["node1"]["msg"], "the peer is named"
        after = state(net)
        assert after == before, "a refusal left something behind"
        assert not any(s["brick"] for s in after.values()) and not any(s["volumes"] for s in after.values())


def test_unreachable_peer_is_named_and_nothing_is_created(run_playbook, net):
    node1, node2, node3 = net.peers
    for peer in (node2, node3):
        node1.gluster("peer", "probe", peer.address)
    _wait_pool(node1, 2)
    node3.glusterd.kill()
    node3.glusterd.wait()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pool = _gluster_cli.peers(_gluster_cli.parse(node1.run("gluster", "--xml", "pool", "list").stdout))
            if any(p["hostname"] == node3.address and not p["connected"] for p in pool):
                break
            time.sleep(0.5)
        before = state(net)
        args = {"image_storage": "Two", "name": "gv", "brick": brick(net), "arbiter": "node3", "create_timeout": 0}
        results = run(run_playbook, net, GV, args, hosts="node1:node2")
        for host in ("node1", "node2"):
            assert results[host].get("failed"), results[host]
            assert f"peer node3 ({node3.address}) is unreachable" in results[host]["msg"], results[host]["msg"]
        assert state(net) == before
    finally:
        node3.start_glusterd()
        node3.wait_ready()
    _wait_pool(node1, 2)


def _wait_pool(peer, count, timeout=60):
    """Until ``peer``'s pool lists ``count`` other peers, all connected (60 s: a loaded machine is slow to probe)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pool = _gluster_cli.peers(_gluster_cli.parse(peer.run("gluster", "--xml", "pool", "list").stdout))
        others = [p for p in pool if not p["self"]]
        if len(others) == count and all(p["connected"] for p in others):
            return
        time.sleep(0.5)
    raise AssertionError(f"{peer.name}: the pool did not show {count} connected peers within {timeout} s")


# --- create, mount, unchanged, stale, absent ---------------------------------------------------


def test_create_mount_and_converge_again(run_playbook, net, qemu_user):
    node1, node2, node3 = net.peers
    args = {"image_storage": "Two", "name": "gv", "brick": brick(net), "arbiter": "node3"}
    mount_point = str(net.base / "volumes" / "Two" / "gv")

    before = state(net)
    checked = run(run_playbook, net, GV, args, hosts="node1:node2", check=True)
    assert all(r["changed"] and not r.get("failed") for r in checked.values()), checked
    assert state(net) == before, "check mode changed something"
    assert checked["node1"]["actions"][0].startswith("create Gluster volume gv, replica 3 arbiter 1 (node3")
    assert checked["node2"]["actions"][0] == "wait up to 300 s for node1 to create and start Gluster volume gv"
    assert any("experimental" in w for w in checked["node1"].get("warnings", []))

    started = time.monotonic()
    real = run(run_playbook, net, GV, args, hosts="node1:node2")
    elapsed = time.monotonic() - started
    for host in ("node1", "node2"):
        assert not real[host].get("failed"), real[host].get("msg")
        assert real[host]["changed"] and real[host]["actions"] == checked[host]["actions"]
        volume = real[host]["volume"]
        assert (volume["status"], volume["mounted"], volume["volume_status"]) == ("online", True, "Started"), volume
        assert (volume["fallocate"], volume["reflink"], volume["qemu_writable"]) == (True, False, True), volume
        assert [(b["host"], b["online"], b["arbiter"]) for b in volume["bricks"]] == [
            ("node1", True, False),
            ("node2", True, False),
            ("node3", True, True),
        ]
        assert volume["heal_pending"] == 0
    print(f"create and mount on two hosts: {elapsed:.1f} s")

    info = _gluster_cli.volume_info(_PeerRunner(node1), "gv", "test")
    assert (info["replica"], info["arbiter"], info["started"]) == (3, 1, True)
    assert info["options"]["storage.owner-uid"] == str(_uid(qemu_user))
    assert info["options"]["features.shard"] == "on", "the virt group is set"
    for peer, others in ((node1, [node2, node3]), (node2, [node1, node3])):
        assert peer.mounts()[mount_point] == ("fuse.glusterfs", f"{peer.address}:/gv")
        fstab = peer.read(f"{net.base}/etc/fstab")
        servers = ":".join(o.address for o in others)
        wanted = [
            f"{peer.address}:/gv",
            mount_point,
            "glusterfs",
            f"_netdev,backup-volfile-servers={servers}",
            "0",
            "0",
        ]
        assert wanted in [line.split() for line in fstab.splitlines()], fstab
    assert node1.run("sh", "-c", f"echo written-on-node1 > {mount_point}/probe.txt").returncode == 0
    assert node2.read(f"{mount_point}/probe.txt") == "written-on-node1\n"
    assert mount_point not in node3.mounts(), "the arbiter is not a host of the storage: it mounts nothing"

    again = run(run_playbook, net, GV, args, hosts="node1:node2")
    for host in ("node1", "node2"):
        assert not again[host].get("failed"), again[host].get("msg")
        assert not again[host]["changed"], again[host]["actions"]
    checked_again = run(run_playbook, net, GV, args, hosts="node1:node2", check=True)
    assert not any(r["changed"] for r in checked_again.values())

    # --limit: node2 alone converges without node1, and changes nothing.
    limited = run(run_playbook, net, GV, args, hosts="node2")
    assert not limited["node2"].get("failed") and not limited["node2"]["changed"], limited


def test_a_dead_client_is_stale_and_mounted_again(run_playbook, net):
    node1 = net.peers[0]
    mount_point = str(net.base / "volumes" / "Two" / "gv")
    clients = [
        pid
        for pid in node1.processes()
        if _comm(pid) == "glusterfs" and mount_point in Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    ]
    assert len(clients) == 1, clients
    os.kill(clients[0], signal.SIGKILL)
    time.sleep(0.5)
    info = run(run_playbook, net, "flexvdi.storage.storage_info", {}, hosts="node1")["node1"]
    assert not info.get("failed"), info.get("msg")
    volume = _find_volume(info, "Two", "gv")
    assert volume["status"] == "stale", volume
    assert "Transport endpoint is not connected" in volume["message"]

    args = {"image_storage": "Two", "name": "gv", "brick": brick(net), "arbiter": "node3"}
    checked = run(run_playbook, net, GV, args, hosts="node1", check=True)["node1"]
    assert checked["changed"] and "again" in " ".join(checked["actions"]), checked
    fixed = run(run_playbook, net, GV, args, hosts="node1")["node1"]
    assert not fixed.get("failed"), fixed.get("msg")
    assert fixed["changed"] and fixed["volume"]["status"] == "online", fixed
    assert node1.read(f"{mount_point}/probe.txt") == "written-on-node1\n"


def test_every_brick_gone_fails_the_converge_and_is_not_stale(run_playbook, net):
    """All the volume's servers gone, its client alive: FUSE answers ENOTCONN, as for a dead client.

    Mounting again would only lose the mount (issue 16): storage_info says its servers are not
    responding, and the converge fails in the same words, changes nothing and keeps the mount.
    """
    node1 = net.peers[0]
    mount_point = str(net.base / "volumes" / "Two" / "gv")
    bricks = [pid for peer in net.peers for pid in peer.processes() if _comm(pid) == "glusterfsd"]
    assert len(bricks) == 3, bricks
    for pid in bricks:
        os.kill(pid, signal.SIGKILL)
    try:
        deadline = time.monotonic() + 30
        while node1.run("stat", "-f", mount_point).returncode == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "Transport endpoint is not connected" in node1.run("stat", "-f", mount_point).stderr
        before = state(net)
        info = run(run_playbook, net, "flexvdi.storage.storage_info", {}, hosts="node1")["node1"]
        volume = _find_volume(info, "Two", "gv")
        words = (
            f"Gluster server {node1.address} is not responding: {mount_point} (fuse.glusterfs from "
            f"{node1.address}:/gv) answered: Transport endpoint is not connected"
        )
        assert volume["status"] == "unresponsive" and volume["message"].startswith(words), volume

        args = {"image_storage": "Two", "name": "gv", "brick": brick(net), "arbiter": "node3"}
        for check in (True, False):
            converge = run(run_playbook, net, GV, args, hosts="node1", check=check)["node1"]
            assert converge.get("failed") and not converge["changed"], converge
            assert converge["msg"] == f"Gluster volume gv of image storage Two: {words}; nothing was changed"
        assert state(net) == before
        assert mount_point in node1.mounts(), "the mount is kept"
    finally:
        # The bricks back, and the client reconnected, whatever happened above: the next test needs them.
        node1.gluster("volume", "start", "gv", "force")
        deadline = time.monotonic() + 60
        while node1.run("stat", "-f", mount_point).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
    again = run(run_playbook, net, GV, args, hosts="node1")["node1"]
    assert not again.get("failed") and not again["changed"], again
    assert again["volume"]["status"] == "online", again["volume"]


def test_absent_unmounts_and_delete_volume_keeps_the_bricks(run_playbook, net):
    node1, node2, _node3 = net.peers
    mount_point = str(net.base / "volumes" / "Two" / "gv")
    args = {"image_storage": "Two", "name": "gv", "state": "absent"}
    refused = run(run_playbook, net, GV, args, hosts="node1")["node1"]
    assert refused.get("failed") and "holds 1 guest image(s) (probe.txt)" in refused["msg"], refused
    assert "force: true" in refused["msg"] and mount_point in node1.mounts()
    args["force"] = True
    removed = run(run_playbook, net, GV, args, hosts="node1:node2")
    for host, peer in (("node1", node1), ("node2", node2)):
        assert not removed[host].get("failed"), removed[host].get("msg")
        assert removed[host]["changed"]
        assert mount_point not in peer.mounts()
        assert f":/gv {mount_point}" not in peer.read(f"{net.base}/etc/fstab")
        assert "gv" not in json.loads(peer.read(f"{net.base}/etc/storage.json"))["image_storages"]["Two"]["volumes"]
    assert [
        v["name"]
        for v in _gluster_cli.volumes(_gluster_cli.parse(node1.run("gluster", "--xml", "volume", "info").stdout))
    ] == ["gv"]

    # The storage role: the volume declared again is adopted and mounted (not created), then
    # declared absent with delete_volume: node1, the first host, stops and deletes it.
    volume = {"name": "gv", "type": "gluster", "brick": brick(net), "arbiter": "node3"}
    role = run_playbook(_role_play(net, volume), inventory=net.inventory_path)
    assert role.rc == 0, role.stdout[-3000:]
    assert recap(role.stdout) == {"node1": 1, "node2": 1}, "mounted again, nothing else"
    assert all(mount_point in peer.mounts() for peer in (node1, node2))
    assert recap(run_playbook(_role_play(net, volume), inventory=net.inventory_path).stdout) == {"node1": 0, "node2": 0}

    gone = dict(volume, state="absent", force=True, delete_volume=True)
    role = run_playbook(_role_play(net, gone), inventory=net.inventory_path)
    assert role.rc == 0, role.stdout[-3000:]
    assert recap(role.stdout) == {"node1": 1, "node2": 1}
    assert _gluster_cli.volumes(_gluster_cli.parse(node1.run("gluster", "--xml", "volume", "info").stdout)) == []
    assert not any(mount_point in peer.mounts() for peer in (node1, node2))
    assert node1.run("cat", f"{brick(net)}/probe.txt").stdout == "written-on-node1\n", "brick data stays"


def _role_play(net, volume, hosts=("node1", "node2"), name="Two"):
    """A play of the storage role on ``hosts``: one image storage ``name`` of those hosts with ``volume``."""
    storages = [{"name": name, "hosts": list(hosts), "root": str(net.base / "volumes" / name), "volumes": [volume]}]
    return textwrap.dedent(
        f"""\
        - hosts: {":".join(hosts)}
          gather_facts: false
          module_defaults:
            group/flexvdi.storage.all:
              registry: {net.base}/etc/storage.json
              fstab: {net.base}/etc/fstab
          vars:
            flexvdi_image_storages: {json.dumps(storages)}
          roles:
            - role: flexvdi.storage.storage
        """
    )


def recap(stdout):
    return {m[0]: int(m[1]) for m in re.findall(r"^(node\d)\s+: ok=\d+\s+changed=(\d+)", stdout, re.M)}


# --- helpers ------------------------------------------------------------------------------------


class _PeerRunner:
    """The module's runner interface, running commands inside a peer (for _gluster_cli.volume_info)."""

    def __init__(self, peer):
        self.peer = peer

    def run(self, argv, what, check=True, data=None, timeout=None):
        proc = self.peer.run(*argv)
        return proc.returncode, proc.stdout, proc.stderr


def _uid(user):
    import pwd

    return pwd.getpwnam(user).pw_uid


def _comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _find_volume(info, storage_name, name):
    for storage in info["image_storages"]:
        if storage["name"] == storage_name:
            for volume in storage["volumes"]:
                if volume["name"] == name:
                    return volume
    raise AssertionError(f"no volume {storage_name}/{name} in {info}")
