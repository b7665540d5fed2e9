# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to Gluster: the one parser of ``gluster --xml``, the one runner of the gluster CLI. Private.

Nothing here plans: ``parse`` and the readers after it turn glusterd's XML answers (volume
info, pool list, status detail, heal info) into dicts; ``cli`` runs ``gluster --mode=script
--xml`` bounded in time, asking again while another host's operation holds glusterd's lock;
``read_group`` reads glusterd's option group files; the ``*_argv`` builders spell the commands
(``volume create``, ``volume set``, ``mkfs.xfs`` of a brick). _gluster.py plans with them.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET

from ._errors import StorageError

CLI_TIMEOUT = 120  # create, start, add-brick: glusterd answers in seconds, a dead peer in ~2 min
GLUSTERD_LOG = "/var/log/glusterfs/glusterd.log"  # where glusterd says why an operation failed
READ_TIMEOUT = 60
GROUPS_DIR = "/var/lib/glusterd/groups"
TRANSPORTS = {"0": "tcp", "1": "rdma", "2": "tcp,rdma"}
MISSING_VOLUME = 30806  # opErrno of "Volume does not exist"
# glusterd serialises cluster-wide operations (volume status, set, start, heal info...) with a
# lock per volume: a host asking while another host's operation holds it is told to come back.
# Every host of a storage runs at once, so that is ordinary, not an error: ask again, bounded.
BUSY_ERRNO = 30802  # opErrno of "Another transaction is in progress"
BUSY_TEXTS = ("Another transaction is in progress", "Locking failed on", "Unable to acquire lock")
BUSY_RETRY_SECONDS = 60
BRICKS_ONLINE_TIMEOUT = 60  # after `volume start`: each brick process signs in to its glusterd


# --- the one parser of `gluster --xml` -------------------------------------------------------


def parse(text, what="gluster"):
    """The root of ``gluster --xml`` output; a StorageError when it is not XML (glusterd down, old CLI)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        first = next((line.strip() for line in (text or "").splitlines() if line.strip()), "no output")
        raise StorageError(f"{what}: gluster gave no XML ({exc}): {first}") from None
    if root.tag != "cliOutput":
        raise StorageError(f"{what}: gluster gave XML without <cliOutput>: {root.tag}")
    return root


def op_status(root):
    """(opRet, opErrno, opErrstr) of a parsed answer."""
    return _int(root.findtext("opRet"), 0), _int(root.findtext("opErrno"), 0), (root.findtext("opErrstr") or "").strip()


def _int(text, default=None):
    try:
        return int((text or "").strip())
    except ValueError:
        return default


def split_brick(name):
    """``host:/path`` -> (host, path); an IPv6 host may be bracketed."""
    host, _sep, path = name.partition(":/")
    return host.strip("[]"), "/" + path


def volumes(root):
    """Every volume of ``volume info`` as a dict: name, id, started, type, counts, transport, bricks, options."""
    found = []
    for vol in root.iter("volume"):
        if vol.find("bricks") is None:
            continue
        bricks = []
        for brick in vol.find("bricks").findall("brick"):
            name = (brick.findtext("name") or (brick.text or "")).strip()
            host, path = split_brick(name)
            bricks.append(
                {
                    "name": name,
                    "address": host,
                    "path": path,
                    "uuid": brick.findtext("hostUuid") or brick.get("uuid"),
                    "arbiter": brick.findtext("isArbiter") == "1",
                }
            )
        options = {}
        for option in vol.iter("option"):
            key = option.findtext("name")
            if key:
                options[key] = option.findtext("value") or ""
        found.append(
            {
                "name": vol.findtext("name"),
                "id": vol.findtext("id"),
                "status": vol.findtext("statusStr"),
                "started": vol.findtext("status") == "1",
                "type": vol.findtext("typeStr"),
                "replica": _int(vol.findtext("replicaCount")),
                "arbiter": _int(vol.findtext("arbiterCount"), 0),
                "bricks": bricks,
                "transport": TRANSPORTS.get((vol.findtext("transport") or "").strip(), "tcp"),
                "options": options,
            }
        )
    return found


def peers(root):
    """Peers of ``peer status`` or ``pool list``: uuid, hostnames, connected, state, self (this host)."""
    found = []
    for peer in root.iter("peer"):
        hostname = peer.findtext("hostname") or ""
        names = [h.text for h in peer.findall("hostnames/hostname") if h.text] or [hostname]
        state = peer.findtext("stateStr")
        found.append(
            {
                "uuid": peer.findtext("uuid"),
                "hostname": hostname,
                "hostnames": names,
                "connected": peer.findtext("connected") == "1",
                "state": state,
                "in_cluster": state == "Peer in Cluster",
                "self": state is None and hostname == "localhost",
            }
        )
    return found


def brick_status(root):
    """Bricks (and self-heal daemons) of ``volume status <vol> detail``: address, path, online, sizes."""
    found = []
    for node in root.iter("node"):
        found.append(
            {
                "address": node.findtext("hostname"),
                "path": node.findtext("path"),
                "online": node.findtext("status") == "1",
                "pid": _int(node.findtext("pid")),
                "size": _int(node.findtext("sizeTotal")),
                "free": _int(node.findtext("sizeFree")),
                "device": node.findtext("device"),
                "fstype": node.findtext("fsName"),
            }
        )
    return found


def heal(root):
    """Per brick of ``volume heal <vol> info [summary]``: connected, pending entries (None: unknown), split-brain."""
    found = []
    for brick in root.iter("brick"):
        name = (brick.findtext("name") or "").strip()
        if not name:
            continue
        host, path = split_brick(name)
        status = (brick.findtext("status") or "").strip()
        pending = _int(brick.findtext("numberOfEntriesInHealPending"))
        if pending is None:
            pending = _int(brick.findtext("numberOfEntries"))
        found.append(
            {
                "name": name,
                "address": host,
                "path": path,
                "connected": status == "Connected",
                "status": status,
                "pending": pending if status == "Connected" else None,
                "split_brain": _int(brick.findtext("numberOfEntriesInSplitBrain"), 0),
            }
        )
    return found


def pending_total(bricks):
    """Entries waiting for heal across the connected bricks (None when no brick answered)."""
    counts = [b["pending"] for b in bricks if b["pending"] is not None]
    return sum(counts) if counts else None


# --- the CLI ---------------------------------------------------------------------------------


def is_busy(root):
    """Whether a parsed answer is glusterd's "another host's operation holds the lock: try again"."""
    ret, number, errstr = op_status(root)
    return ret != 0 and (number == BUSY_ERRNO or any(text in errstr for text in BUSY_TEXTS))


def cli(runner, args, what, check=True, timeout=READ_TIMEOUT, busy_retry=BUSY_RETRY_SECONDS):
    """``gluster --mode=script --xml <args>``, parsed; a failed operation raises unless ``check`` is false.

    An answer that says another operation holds glusterd's lock is asked again for up to
    ``busy_retry`` seconds, then it is the answer (a failure naming the lock).
    """
    deadline = time.monotonic() + busy_retry
    delay = 0.5
    while True:
        root, rc = _cli_once(runner, args, what, timeout)
        if not is_busy(root) or time.monotonic() + delay > deadline:
            break
        time.sleep(delay)
        delay = min(delay * 2, 4.0)
    ret, _errno, errstr = op_status(root)
    if check and ret != 0:
        if "check log file" in (errstr or "").lower():
            # glusterd's own words name the peer but not its log.
            errstr += f" (on the host named there: {GLUSTERD_LOG})"
        raise StorageError(f"{what}: gluster {' '.join(args)} failed: {errstr or 'rc=%d' % rc}")
    return root


def _cli_once(runner, args, what, timeout):
    rc, out, err = runner.run(["gluster", "--mode=script", "--xml", *args], what, check=False, timeout=timeout)
    if not (out or "").lstrip().startswith("<"):
        detail = "; ".join(line.strip() for line in (err or out or "").splitlines() if line.strip()) or f"rc={rc}"
        if "Connection failed" in detail or "daemon is operational" in detail:
            raise StorageError(
                f"{what}: glusterd does not answer on this host ({detail}): start it (role flexvdi.storage.gluster_cluster)"
            )
        raise StorageError(f"{what}: gluster {' '.join(args)} failed: {detail}")
    return parse(out, what), rc


def volume_info(runner, volume, what):
    """The volume's info, or None when it does not exist."""
    root = cli(runner, ["volume", "info", volume], what, check=False)
    ret, number, errstr = op_status(root)
    if ret != 0:
        if number == MISSING_VOLUME or "does not exist" in errstr:
            return None
        raise StorageError(f"{what}: gluster volume info {volume} failed: {errstr}")
    found = [v for v in volumes(root) if v["name"] == volume]
    return found[0] if found else None


def bricks_online(runner, volume, what):
    """{(address, path): online} from ``volume status <vol> detail``; None when glusterd gave no answer."""
    root = cli(runner, ["volume", "status", volume, "detail"], what, check=False)
    if op_status(root)[0] != 0:
        return None
    return {(b["address"], b["path"]): b["online"] for b in brick_status(root)}


def wait_bricks_online(runner, volume, what, timeout=BRICKS_ONLINE_TIMEOUT):
    """After ``volume start``: until every brick process has signed in to its glusterd, bounded.

    glusterd answers the start once it has spawned the brick processes; each is online when
    it has connected back (seconds on a loaded host). Mounting before that works, but the
    volume's first status would show bricks offline that are only starting. Past the timeout
    the bricks are left to the status to report.
    """
    deadline = time.monotonic() + timeout
    while True:
        online = bricks_online(runner, volume, what)
        if online and all(online.values()) or time.monotonic() >= deadline:
            return online
        time.sleep(1.0)


# --- option groups ---------------------------------------------------------------------------


def read_group(group="virt", directory=None):
    """The settings of a glusterd option group (``key=value`` lines), as ``volume set <vol> group`` applies them."""
    path = os.path.join(directory or GROUPS_DIR, group)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise StorageError(
            f"the Gluster option group {group} ({path}) cannot be read ({exc.strerror}): install glusterfs-server "
            "(role flexvdi.storage.gluster_cluster), or set virt_profile: false"
        ) from None
    return parse_group(text)


def parse_group(text):
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        settings[key.strip()] = value.strip()
    return settings


# --- commands --------------------------------------------------------------------------------


def is_loopback(address):
    """Whether ``address`` names this host only (glusterd refuses such bricks: "other than localhost, 127.0.0.1")."""
    return address in ("localhost", "::1", "[::1]") or address.startswith("127.") or address.startswith("0.")


def create_argv(volume, replica, arbiter, transport, bricks, force):
    argv = ["volume", "create", volume]
    argv += ["replica", "3", "arbiter", "1"] if arbiter else ["replica", str(replica)]
    argv += ["transport", transport]
    argv += [f"{address}:{path}" for address, path in bricks]
    if force:
        argv.append("force")
    return argv


def set_argv(volume, pairs):
    """``gluster volume set`` of every (key, value) pair at once."""
    return ["volume", "set", volume, *(word for pair in pairs for word in pair)]


# --- brick filesystems (module gluster_brick, role gluster_cluster) --------------------------

BRICK_LABEL = "flxbrick"  # XFS labels hold at most 12 characters


def mkfs_brick_argv(device, force=False):
    """XFS with 512-byte inodes, as Gluster recommends (its extended attributes fit in the inode)."""
    return ["mkfs.xfs", "-q", *(["-f"] if force else []), "-i", "size=512", "-L", BRICK_LABEL, "--", device]
