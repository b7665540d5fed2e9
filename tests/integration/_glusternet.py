"""Gluster peers on this machine: one network and mount namespace per peer, each with its own glusterd.

glusterd refuses bricks on loopback addresses, so every peer gets an address on a bridge this
harness creates (``flxgl0``, 10.252.0.0/24; never the lab's flxlab0). Each peer is a holder
process (``sleep``) in its own network namespace and its own mount namespace (a slave of the
root's, so the root's mounts show inside and the peer's never leak out), where:

- ``/var/lib/glusterd`` is the peer's working directory (a copy of the package's ``groups``);
- ``/run`` is a private tmpfs (glusterd.socket, brick sockets and pids);
- ``/var/log/glusterfs`` is the peer's log directory;
- ``/tmp`` is the peer's own (glusterd's scratch volfiles), with the tests' directory bound back in;
- ``<base>/etc`` (registry and fstab) and ``<base>/bricks`` are the peer's own directories,
  so the same paths name a different registry, fstab and brick on every peer, as on real hosts.

Ansible reaches a peer through the local connection with an interpreter that enters the
holder's namespaces (``nsenter -t <pid> -m -n``): a module run there sees that peer's glusterd,
mounts and files. Teardown kills every process in the peers' network namespaces (glusterd,
glusterfsd, the FUSE clients), by pid, then deletes the namespaces and the bridge.
With FLEXVDI_GLUSTER_LOGS=<dir> set, the peers' logs are copied there first (a failure's post-mortem).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BRIDGE = "flxgl0"
SUBNET = "10.252.0"


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _ns_inode(pid, kind):
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


class Peer:
    def __init__(self, net, index):
        self.net = net
        self.index = index
        self.name = f"node{index}"
        self.netns = f"flxgl{index}"
        self.address = f"{SUBNET}.{10 + index}"
        self.dir = net.base / "peers" / self.name
        self.holder = None
        self.glusterd = None
        self.interpreter = self.dir / "python"
        self.bricks_source = self.dir / "bricks"  # bind-mounted on <base>/bricks inside the peer

    # --- commands inside the peer ----------------------------------------------------------
    def prefix(self):
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-n", "--"]

    def run(self, *argv, check=False, timeout=60):
        return subprocess.run([*self.prefix(), *argv], capture_output=True, text=True, check=check, timeout=timeout)

    def gluster(self, *args, check=True):
        proc = self.run("gluster", "--mode=script", *args)
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name}: gluster {' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc

    def mounts(self):
        """{mount point: (fstype, source)} in this peer's mount namespace."""
        found = {}
        with open(f"/proc/{self.holder.pid}/mountinfo", encoding="utf-8") as handle:
            for line in handle:
                fields = line.split(" ")
                rest = fields[fields.index("-", 6) + 1 :]
                found[fields[4].replace("\\040", " ")] = (rest[0], rest[1])
        return found

    def read(self, path):
        """A file as this peer sees it (its etc and bricks are its own), or None."""
        proc = self.run("cat", path)
        return proc.stdout if proc.returncode == 0 else None

    def exists(self, path):
        return self.run("test", "-e", path).returncode == 0

    # --- life ------------------------------------------------------------------------------
    def start(self):
        d = self.dir
        for sub in ("wd", "log", "etc", "bricks", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "tmp").chmod(0o1777)
        shutil.copytree("/var/lib/glusterd/groups", d / "wd" / "groups", dirs_exist_ok=True)
        fstab = d / "etc" / "fstab"
        fstab.write_text("# fstab of a test peer\n")
        _ip("netns", "add", self.netns)
        veth = f"flxglv{self.index}"
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        _ip("link", "set", veth, "master", BRIDGE, "up")
        _ip("-n", self.netns, "addr", "add", f"{self.address}/24", "dev", "eth0")
        _ip("-n", self.netns, "link", "set", "eth0", "up")
        _ip("-n", self.netns, "link", "set", "lo", "up")
        base = self.net.base
        outer = base.parent  # the tests' directory under /tmp (BASE), which holds base
        script = (
            "set -e; mount --make-rslave /; "
            f"mount --bind {d / 'wd'} /var/lib/glusterd; "
            "mount -t tmpfs -o mode=0755 tmpfs /run; mkdir -p /run/gluster /run/lock; "
            f"mount --bind {d / 'log'} /var/log/glusterfs; "
            # A /tmp of its own, as a real host has: glusterd writes scratch volfiles named after the
            # volume there (/tmp/<volume>.tcp-fuse.vol), and peers sharing one /tmp raced on them (an
            # add-brick commit failed on a peer that was not even adding a brick). The base directory
            # stays at its path: bound aside under the private /run, then back inside the new /tmp.
            f"mkdir -p /run/flexvdi-base; mount --rbind {outer} /run/flexvdi-base; "
            f"mount --bind {d / 'tmp'} /tmp; mkdir -p {outer}; mount --rbind /run/flexvdi-base {outer}; "
            "umount -l /run/flexvdi-base; "
            f"mount --bind {d / 'etc'} {base / 'etc'}; "
            f"mount --bind {self.bricks_source} {base / 'bricks'}; "
            "echo ready; exec sleep infinity"
        )
        self.holder = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--propagation", "unchanged", "sh", "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"{self.name}: namespace holder failed: {self.holder.stderr.read()}")
        # The holder is `sleep` (exec), in the peer's namespaces; nsenter targets it.
        self.interpreter.write_text(f'#!/bin/sh\nexec nsenter -t {self.holder.pid} -m -n -- {sys.executable} "$@"\n')
        self.interpreter.chmod(0o755)
        self.start_glusterd()

    def start_glusterd(self):
        self.glusterd = subprocess.Popen(
            [*self.prefix(), "glusterd", "-N", "-l", "/var/log/glusterfs/glusterd.log"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run("gluster", "--mode=script", "pool", "list").returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError(f"{self.name}: glusterd did not answer within {timeout} s")

    def processes(self):
        """Pids of every process in this peer's network namespace (glusterd, bricks, clients, holder)."""
        if self.holder is None:
            return []
        target = _ns_inode(self.holder.pid, "net")
        if target is None:
            return []
        return [int(p) for p in os.listdir("/proc") if p.isdigit() and _ns_inode(p, "net") == target]


class GlusterNet:
    def __init__(self, base, count):
        self.base = Path(base)
        self.peers = [Peer(self, i + 1) for i in range(count)]

    def __getitem__(self, index):
        return self.peers[index]

    def start(self):
        for sub in ("etc", "bricks"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("link", "set", BRIDGE, "up")
        for peer in self.peers:
            peer.start()
        for peer in self.peers:
            peer.wait_ready()

    def inventory(self, path, extra=None, more=None):
        """An inventory of the peers (connection local through each one's interpreter).

        ``more``: {name: address} of hosts that exist only in the inventory (no namespace, nothing answers).
        """
        import json

        hosts = {
            p.name: {
                "ansible_connection": "local",
                "ansible_python_interpreter": str(p.interpreter),
                "gluster_cluster_address": p.address,
                **(extra or {}),
            }
            for p in self.peers
        }
        for name, address in (more or {}).items():
            hosts[name] = {"ansible_connection": "local", "gluster_cluster_address": address}
        Path(path).write_text(
            json.dumps({"all": {"hosts": hosts, "children": {"vdi_hosts": {"hosts": dict.fromkeys(hosts, {})}}}})
        )
        return str(path)

    def stop(self):
        """Kill every process of the peers by pid, then delete the namespaces and the bridge."""
        problems = []
        pids = [pid for peer in self.peers for pid in peer.processes()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for peer in self.peers:
            for proc in (peer.glusterd, peer.holder):
                if proc is not None:
                    try:
                        proc.kill()
                        proc.wait(timeout=10)
                    except (ProcessLookupError, subprocess.TimeoutExpired):
                        pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in pids):
            time.sleep(0.1)
        for peer in self.peers:
            if _ip("netns", "delete", peer.netns, check=False).returncode != 0 and os.path.exists(
                f"/run/netns/{peer.netns}"
            ):
                problems.append(f"netns {peer.netns}")
        exists = _ip("link", "show", BRIDGE, check=False).returncode == 0
        if exists and _ip("link", "delete", BRIDGE, check=False).returncode != 0:
            problems.append(f"bridge {BRIDGE}")
        left = [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
        if left:
            problems.append("processes " + ", ".join(map(str, left)))
        return problems


def leftovers():
    """Namespaces or a bridge of an earlier run that did not clean up (a killed pytest)."""
    found = []
    if _ip("link", "show", BRIDGE, check=False).returncode == 0:
        found.append(f"bridge {BRIDGE}")
    found += (
        [f"netns {n}" for n in os.listdir("/run/netns") if n.startswith("flxgl")] if os.path.isdir("/run/netns") else []
    )
    return found


def _run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


@contextlib.contextmanager
def gluster_net(base_dir, prefix, peers, subdirs):
    """A started GlusterNet of ``peers`` peers under a new directory ``base_dir/prefix*``, for a fixture.

    Its bricks live on one XFS (a loop device of 400 MiB: glusterd wants extended attributes and
    an inode size of 512), a directory per peer; ``subdirs`` are made in the base (0755). Skips
    without root, fails without glusterd or with an earlier run's namespaces left; on the way out
    stops the peers, unmounts, detaches the loop device and deletes the directory, and fails
    naming whatever it could not remove.
    """
    import pytest

    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, loop devices, FUSE)")
    if _run("which", "glusterd").returncode != 0:
        pytest.fail("glusterd is not installed: run `make setup` (glusterfs-server)", pytrace=False)
    stale = leftovers()
    if stale:
        pytest.fail(f"an earlier run left {', '.join(stale)}: delete them (ip netns delete / ip link delete)")
    base_dir.mkdir(mode=0o755, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=base_dir))
    base.chmod(0o755)
    image, device, xfs = base / "bricks.img", None, base / "xfs"
    glnet = GlusterNet(base, peers)
    try:
        with open(image, "wb") as handle:
            handle.truncate(400 * 2**20)
        device = _run("losetup", "--find", "--show", str(image)).stdout.strip()
        subprocess.run(["mkfs.xfs", "-q", "-f", "-i", "size=512", device], check=True)
        xfs.mkdir()
        subprocess.run(["mount", device, str(xfs)], check=True)
        for peer in glnet.peers:
            (xfs / peer.name).mkdir()
            peer.bricks_source = xfs / peer.name
        for sub in subdirs:
            (base / sub).mkdir(mode=0o755)
        glnet.start()
        glnet.inventory_path = glnet.inventory(base / "inventory.json")
        yield glnet
    finally:
        problems = glnet.stop()
        keep = os.environ.get("FLEXVDI_GLUSTER_LOGS")
        if keep:  # the peers' glusterd, brick and client logs, for a failure's post-mortem
            for peer in glnet.peers:
                shutil.copytree(peer.dir / "log", Path(keep) / base.name / peer.name, dirs_exist_ok=True)
        if device:
            if os.path.ismount(xfs) and _run("umount", str(xfs)).returncode != 0:
                problems.append(f"mount {xfs}")
            if _run("losetup", "-d", device).returncode != 0:
                problems.append(f"loop device {device}")
        if not problems:
            subprocess.run(["rm", "-rf", "--one-file-system", str(base)], check=False)
        if problems:
            pytest.fail(f"gluster teardown left behind: {', '.join(problems)}", pytrace=False)
