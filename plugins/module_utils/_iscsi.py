# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""open-iscsi: names, node records, sessions. Private to the collection.

The one module that knows open-iscsi's formats:

- iSCSI names (RFC 3720 3.2.6: ``iqn.yyyy-mm.reversed.domain[:anything]``, ``eui.`` + 16 hex digits,
  ``naa.`` + 16 or 32 hex digits), checked before anything is written;
- node records: the files ``iscsiadm -m node -o new`` writes under ``/etc/iscsi/nodes/<iqn>/``
  (``<address>,<port>`` for a record without a portal group tag, ``<address>,<port>,<tpgt>/<iface>``
  for one that discovery made), ``name = value`` lines between ``# BEGIN RECORD`` and ``# END RECORD``
  (usr/idbm.c). They are read and rewritten in-process: that is how a CHAP secret reaches the record
  without ever being an argument of a command;
- sessions, read from sysfs (``/sys/class/iscsi_session``, ``/sys/class/iscsi_connection``) on the
  no-op path, and the parsers of ``iscsiadm -m session -P 3`` and ``iscsiadm -m node`` for what only
  iscsiadm says (usr/session_info.c);
- the initiator name file (``/etc/iscsi/initiatorname.iscsi``).
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re

from ._errors import StorageError
from ._fileio import read_value

ISCSI_DIR = "/etc/iscsi"
SYSFS = "/sys"
DEFAULT_PORT = 3260
# Login and logout may each take this long per portal (node.conn[0].timeo.login_timeout and the
# retries of node.session.initial_login_retry_max are set below it in the record).
COMMAND_TIMEOUT = 30

_IQN_RE = re.compile(
    r"^iqn\.\d{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[^\s]+)?$"
)
_EUI_RE = re.compile(r"^eui\.[0-9A-F]{16}$")
_NAA_RE = re.compile(r"^naa\.([0-9A-F]{16}|[0-9A-F]{32})$")
MAX_NAME = 223  # RFC 3720 3.2.6.1: an iSCSI name is at most 223 bytes
# CHAP: LIO keeps the user name and secret in 256-byte buffers (include/target/iscsi/iscsi_target_core.h,
# MAX_USER_LEN/MAX_PASS_LEN, NUL included) and open-iscsi in AUTH_STR_MAX_LEN (256) ones; RFC 3720 11.1.4
# wants a secret of at least 96 bits, and targets such as Windows' and many arrays refuse fewer than 12
# characters. A secret is written into the node record as one "name = value" line: printable ASCII, no blank.
CHAP_MIN_SECRET = 12
CHAP_MAX = 255
_CHAP_RE = re.compile(r"^[\x21-\x7e]+$")

# The settings of a node record this collection owns (the rest is iscsiadm's).
STARTUP_KEYS = ("node.startup", "node.conn[0].startup")
AUTH_KEYS = ("node.session.auth.authmethod", "node.session.auth.username", "node.session.auth.password")
SECRET_KEYS = ("node.session.auth.password", "node.session.auth.password_in")


def check_name(name, what, option):
    """``name`` as an iSCSI name (lower case iqn., upper case eui./naa.) or a StorageError naming ``option``."""
    if not isinstance(name, str) or not name:
        raise StorageError(f"{what}: {option} is empty: set it to the target's iSCSI name (iqn.yyyy-mm.domain:...)")
    ok = len(name.encode()) <= MAX_NAME and (_IQN_RE.match(name) or _EUI_RE.match(name) or _NAA_RE.match(name))
    if not ok:
        hint = (
            " (iSCSI names are lower case: %s)" % name.lower()
            if name.lower() != name and name.startswith(("IQN", "iqn"))
            else ""
        )
        raise StorageError(
            f"{what}: {option} {name!r} is not an iSCSI name{hint}: an IQN is iqn.<year>-<month>.<reversed domain>"
            f"[:<unique part>] (for example iqn.2026-12.lab.flexvdi:san), at most {MAX_NAME} bytes, lower case, no "
            f"blank; or eui. with 16 hex digits: fix {option}"
        )
    return name


def check_chap(username, password, what):
    """The CHAP pair a target can take, or a StorageError naming the option (never the secret)."""
    if username is None and password is None:
        return
    if not username or not password:
        missing = "chap_password" if username else "chap_username"
        raise StorageError(f"{what}: CHAP needs both chap_username and chap_password: set {missing}, or neither")
    if not _CHAP_RE.match(username) or len(username) > CHAP_MAX:
        raise StorageError(
            f"{what}: chap_username {username!r} is not a CHAP name the target can take: 1 to {CHAP_MAX} printable "
            "ASCII characters, no blank (LIO's and open-iscsi's limit): fix chap_username"
        )
    if not _CHAP_RE.match(password):
        raise StorageError(
            f"{what}: chap_password has a blank, a control or non-ASCII character, which neither the node record "
            "nor every target takes: use printable ASCII without blanks: fix chap_password"
        )
    if not CHAP_MIN_SECRET <= len(password) <= CHAP_MAX:
        raise StorageError(
            f"{what}: chap_password has {len(password)} characters; a CHAP secret needs {CHAP_MIN_SECRET} to "
            f"{CHAP_MAX} (RFC 3720 asks for at least 96 bits, and targets refuse shorter ones; LIO keeps at most "
            f"{CHAP_MAX}): fix chap_password"
        )


def check_portal(portal, what, resolve=True):
    """``{"address", "port"}`` of one declared portal, the address resolved to an IP when it is a name."""
    if not isinstance(portal, dict) or not portal.get("address"):
        raise StorageError(f"{what}: every entry of portals needs an address (an IP or a DNS name): fix portals")
    unknown = sorted(set(portal) - {"address", "port"})
    if unknown:
        raise StorageError(f"{what}: portal {portal['address']} has unknown keys {', '.join(unknown)}: fix portals")
    address = str(portal["address"]).strip().strip("[]")
    port = portal.get("port", DEFAULT_PORT)
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise StorageError(f"{what}: portal {address} has port {port!r}, not a TCP port (1 to 65535): fix portals")
    try:
        ip = str(ipaddress.ip_address(address))
    except ValueError:
        ip = resolve_name(address, what) if resolve else address
    return {"address": ip, "port": port}


def resolve_name(name, what):
    import socket

    if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", name):
        raise StorageError(f"{what}: portal address {name!r} is neither an IP address nor a host name: fix portals")
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise StorageError(
            f"{what}: portal address {name} does not resolve ({exc}): use its IP address, or fix DNS: fix portals"
        ) from exc
    return sorted({info[4][0] for info in infos})[0]


def portal_text(portal):
    """``ip:port`` as iscsiadm's -p takes it (IPv6 in brackets)."""
    address = portal["address"]
    return ("[%s]:%d" if ":" in address else "%s:%d") % (address, portal["port"])


# --- initiator name -------------------------------------------------------------------------------


def read_initiator_name(path):
    """The InitiatorName= of ``path``: '' when the file or the line is missing, or it asks iscsid to
    generate one (GenerateName=yes, Debian's file before open-iscsi first starts)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return ""
    name = ""
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == "InitiatorName" and not line.lstrip().startswith("#"):
            name = value.strip()
    return name


def initiator_file_text(name):
    return (
        "## Written by flexvdi.storage (role san_client): this host's own iSCSI initiator name.\n"
        "## It must be unique: a cloned host that keeps its source's name is refused before any login.\n"
        "InitiatorName=%s\n" % name
    )


# --- node records ---------------------------------------------------------------------------------


def parse_record(text):
    """A node record file's ``name = value`` lines as an ordered dict (comments dropped)."""
    settings = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if sep:
            settings[key.strip()] = value.strip()
    return settings


def render_record(text, updates):
    """``text`` with each key of ``updates`` set (its last line replaced, else added before the end
    marker); a value of None removes the key. Every other line stays as it was."""
    lines = text.splitlines()
    remaining = dict(updates)
    out = []
    for line in lines:
        key, sep, _value = line.strip().partition("=")
        key = key.strip()
        if sep and not line.lstrip().startswith("#") and key in remaining:
            value = remaining.pop(key)
            if value is not None:
                out.append(f"{key} = {value}")
            continue
        out.append(line)
    added = [f"{k} = {v}" for k, v in remaining.items() if v is not None]
    end = next((i for i in range(len(out) - 1, -1, -1) if out[i].strip().startswith("# END RECORD")), len(out))
    out[end:end] = added
    return "\n".join(out) + "\n"


def _split_portal_entry(entry):
    """``10.0.0.1,3260`` / ``10.0.0.1,3260,1`` / ``fd00::1,3260,1``: (address, port, tpgt or None)."""
    parts = entry.rsplit(",", 2)
    try:
        if len(parts) == 3 and parts[1].isdigit() and parts[2].lstrip("-").isdigit():
            return parts[0], int(parts[1]), int(parts[2])
        address, port = entry.rsplit(",", 1)
        return address, int(port), None
    except ValueError:
        return None


def node_records(iscsi_dir, target):
    """The node records of ``target``: ``{(address, port): [record, ...]}``, each record a dict with
    ``path`` (the file), ``tpgt`` (None for a static record) and ``iface``. Read in-process."""
    base = os.path.join(iscsi_dir, "nodes", target)
    found = {}
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return found
    for entry in entries:
        split = _split_portal_entry(entry)
        if split is None:
            continue
        address, port, tpgt = split
        path = os.path.join(base, entry)
        if os.path.isdir(path):
            for iface in sorted(os.listdir(path)):
                found.setdefault((address, port), []).append(
                    {"path": os.path.join(path, iface), "tpgt": tpgt, "iface": iface, "entry": path}
                )
        elif os.path.isfile(path):
            found.setdefault((address, port), []).append(
                {"path": path, "tpgt": tpgt, "iface": "default", "entry": path}
            )
    return found


def read_record(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read()


def record_settings(timeouts, username=None, password=None):
    """What this collection sets in a node record: login at boot, the timeouts, CHAP (or none)."""
    settings = {
        "node.startup": "automatic",
        "node.conn[0].startup": "automatic",
        "node.session.timeo.replacement_timeout": str(timeouts["replacement_timeout"]),
        "node.conn[0].timeo.noop_out_interval": str(timeouts["noop_out_interval"]),
        "node.conn[0].timeo.noop_out_timeout": str(timeouts["noop_out_timeout"]),
        "node.conn[0].timeo.login_timeout": str(timeouts["login_timeout"]),
        # One try at login: a wrong password or a dead portal fails within login_timeout, not 5 times over.
        "node.session.initial_login_retry_max": "1",
    }
    if username:
        settings.update(
            {
                "node.session.auth.authmethod": "CHAP",
                "node.session.auth.username": username,
                "node.session.auth.password": password,
            }
        )
    else:
        settings.update(
            {
                "node.session.auth.authmethod": "None",
                "node.session.auth.username": None,
                "node.session.auth.password": None,
            }
        )
    return settings


def record_differences(current, wanted):
    """The keys of ``wanted`` whose value ``current`` lacks, secrets named but never shown."""
    return [k for k, v in wanted.items() if current.get(k) != v]


# --- sessions ---------------------------------------------------------------------------------------


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def sessions(sysfs=SYSFS):
    """Every iSCSI session the kernel has, from sysfs, in-process: a list of dicts with ``sid``,
    ``target``, ``address``, ``port`` (the persistent portal, the one logged in to), ``tpgt``,
    ``state`` (LOGGED_IN, FAILED, FREE), ``recovery_tmo``, ``ping_tmo``/``recv_tmo`` (the NOP-Out
    timeout and interval of its connection), and ``disks`` ({"name": "sdb", "state": "running"})."""
    found = []
    for session_dir in sorted(glob.glob(os.path.join(sysfs, "class", "iscsi_session", "session*"))):
        name = os.path.basename(session_dir)
        sid = _int(name[len("session") :])
        if sid is None:
            continue
        conn_dirs = sorted(glob.glob(os.path.join(sysfs, "class", "iscsi_connection", "connection%d:*" % sid)))
        conn = conn_dirs[0] if conn_dirs else None

        def attr(key, base=conn):
            return read_value(os.path.join(base, key)) if base else None

        disks = []
        for block in sorted(glob.glob(os.path.join(session_dir, "device", "target*", "*:*:*:*", "block", "*"))):
            scsi_dir = os.path.dirname(os.path.dirname(block))
            disks.append(
                {
                    "name": os.path.basename(block),
                    "state": read_value(os.path.join(scsi_dir, "state")) or "",
                    "wwid": read_value(os.path.join(scsi_dir, "wwid")) or "",
                }
            )
        found.append(
            {
                "sid": sid,
                "target": read_value(os.path.join(session_dir, "targetname")) or "",
                "address": attr("persistent_address") or attr("address") or "",
                "port": _int(attr("persistent_port") or attr("port")),
                "tpgt": _int(read_value(os.path.join(session_dir, "tpgt"))),
                "state": read_value(os.path.join(session_dir, "state")) or "",
                "recovery_tmo": _int(read_value(os.path.join(session_dir, "recovery_tmo"))),
                "ping_tmo": _int(attr("ping_tmo")),
                "recv_tmo": _int(attr("recv_tmo")),
                "disks": disks,
            }
        )
    return found


_P3_TARGET = re.compile(r"^Target: (\S+)(?: \((\S+)\))?$")
_P3_PORTAL = re.compile(r"^(Current|Persistent) Portal: \[?([^\]]*?)\]?:(\d+),(-?\d+)$")
_P3_DISK = re.compile(r"^Attached scsi disk (\S+)\s+State: (\S+)")
_P3_KEYS = {
    "SID": "sid",
    "iSCSI Session State": "state",
    "iSCSI Connection State": "connection_state",
    "Internal iscsid Session State": "iscsid_state",
    "Recovery Timeout": "recovery_tmo",
    "Iface Initiatorname": "initiator",
    "Iface Name": "iface",
    "username": "username",
}


def parse_session_p3(text):
    """``iscsiadm -m session -P 3`` as a list of sessions: target, current and persistent portal (address,
    port, tpgt), sid, states, recovery_tmo, initiator, CHAP user name (never the password) and disks."""
    found, target = [], None
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _P3_TARGET.match(line)
        if match:
            target = match.group(1)
            continue
        match = _P3_PORTAL.match(line)
        if match:
            kind, address, port, tpgt = match.groups()
            if kind == "Current":
                current = {"target": target, "disks": []}
                found.append(current)
                current.update(current_address=address, current_port=int(port))
            elif current is not None:
                current.update(address=address, port=int(port), tpgt=int(tpgt))
            continue
        if current is None:
            continue
        match = _P3_DISK.match(line)
        if match:
            current["disks"].append({"name": match.group(1), "state": match.group(2)})
            continue
        key, sep, value = line.partition(": ")
        if sep and key in _P3_KEYS:
            value = value.strip()
            if _P3_KEYS[key] in ("sid", "recovery_tmo"):
                value = _int(value)
            current[_P3_KEYS[key]] = value
    return found


def parse_node_list(text):
    """``iscsiadm -m node``: ``[{"address", "port", "tpgt", "target"}]`` (a tpgt of 4294967295 or -1 is None)."""
    found = []
    for line in text.splitlines():
        match = re.match(r"^\[?([^\]\s]*?)\]?:(\d+),(-?\d+) (\S+)$", line.strip())
        if match:
            address, port, tpgt, target = match.groups()
            tpgt = int(tpgt)
            found.append(
                {
                    "address": address,
                    "port": int(port),
                    "tpgt": None if tpgt in (-1, 4294967295) else tpgt,
                    "target": target,
                }
            )
    return found


def parse_discovery(text):
    """``iscsiadm -m discovery -t sendtargets`` output: ``[{"address", "port", "tpgt", "target"}]``."""
    return parse_node_list(text)


# --- the failover arithmetic ------------------------------------------------------------------------

O2CB_HEARTBEAT_INTERVAL = 2  # o2hb writes its slot every 2 s; dead seconds = (threshold - 1) * 2


def dead_seconds(threshold):
    return (int(threshold) - 1) * O2CB_HEARTBEAT_INTERVAL


def failover_seconds(noop_out_interval, noop_out_timeout, replacement_timeout, polling_interval):
    """The longest a write to a LUN waits when one of its paths is lost, in seconds.

    The lost connection is noticed by a NOP-Out that is not answered: up to ``noop_out_interval`` until
    the next one is sent, ``noop_out_timeout`` waiting for its answer. The session then holds its
    commands for ``replacement_timeout`` before failing them to dm-multipath, which retries them on
    another path at once; multipathd's path checker (every ``polling_interval``) may notice the
    path earlier, never later than its own interval after, and is counted as margin.
    """
    return int(noop_out_interval) + int(noop_out_timeout) + int(replacement_timeout) + int(polling_interval)


def check_failover(failover, threshold, where, fix_words):
    """A StorageError when a failover of ``failover`` seconds plus one heartbeat interval outlasts o2cb's
    dead time for ``threshold`` (the heartbeat write held during the failover must still land in time)."""
    dead = dead_seconds(threshold)
    if failover + O2CB_HEARTBEAT_INTERVAL > dead:
        needed = (failover + O2CB_HEARTBEAT_INTERVAL + O2CB_HEARTBEAT_INTERVAL - 1) // O2CB_HEARTBEAT_INTERVAL + 1
        raise StorageError(
            f"{where}: a lost SAN path can hold writes for {failover} s (NOP-Out interval + timeout + "
            f"replacement_timeout + multipath polling_interval), and with o2cb's heartbeat written every 2 s that "
            f"outlasts its dead time of {dead} s (heartbeat threshold {threshold}): a lost path would fence (reboot) "
            "the host. " + fix_words.format(needed=needed)
        )
    return dead
