# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dm-multipath: maps, their paths, and multipath.conf. Private to the collection.

Maps are read from sysfs in-process (``/sys/block/dm-*/dm/uuid`` is ``mpath-<wwid>`` for a map
multipathd made; its ``slaves`` are the paths, each a SCSI disk whose ``device/state`` says whether
it is usable). ``multipathd show maps json`` and ``multipath -ll`` are parsed for what only
multipathd knows (each path's checker state as dm sees it). ``multipath.conf`` is rendered whole:
names are WWIDs on every host (``user_friendly_names no``), every WWID but the declared LUNs'
is blacklisted, so the hosts' own disks never become maps.
"""

from __future__ import annotations

import glob
import json
import os
import re

from ._errors import StorageError
from ._fileio import read_value

SYSFS = "/sys"
CONF = "/etc/multipath.conf"
BY_ID = "/dev/disk/by-id"
# Paths as the SCSI layer reports them: "running" is usable; "blocked" (a session in recovery),
# "transport-offline" (replacement_timeout passed) and "offline" are not.
USABLE_STATES = ("running",)
_WWID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{3,127}$")


def check_wwid(wwid, what):
    """A WWID as multipath names maps (``scsi_id``/``/lib/udev/scsi_id -g``: 3 + 32 hex digits for an NAA
    LUN, ``36001405...`` for LIO), or a StorageError naming luns."""
    if not isinstance(wwid, str) or not _WWID_RE.match(wwid):
        raise StorageError(
            f"{what}: luns has {wwid!r}, not a WWID: give each LUN's WWID as multipath names it (for example "
            "36001405d2b5c4e1f8a7b3c9d0e1f2a3b, from /lib/udev/scsi_id -g -d /dev/sdX or multipath -ll): fix luns"
        )
    return wwid


def map_device(wwid):
    """The stable name of the map of ``wwid``, the same on every host."""
    return f"{BY_ID}/dm-uuid-mpath-{wwid}"


def maps(sysfs=None):
    """Every multipath map: ``{wwid: {"dm": "dm-3", "paths": [{"name": "sdb", "state": "running"}], "active": n}}``,
    read from sysfs in-process."""
    sysfs = sysfs or SYSFS
    found = {}
    for uuid_path in sorted(glob.glob(os.path.join(sysfs, "block", "dm-*", "dm", "uuid"))):
        uuid = read_value(uuid_path) or ""
        if not uuid.startswith("mpath-"):
            continue
        dm_dir = os.path.dirname(os.path.dirname(uuid_path))
        paths = []
        for slave in sorted(
            os.listdir(os.path.join(dm_dir, "slaves")) if os.path.isdir(os.path.join(dm_dir, "slaves")) else []
        ):
            state = read_value(os.path.join(sysfs, "block", slave, "device", "state")) or ""
            paths.append({"name": slave, "state": state})
        found[uuid[len("mpath-") :]] = {
            "dm": os.path.basename(dm_dir),
            "name": read_value(os.path.join(dm_dir, "dm", "name")) or "",
            "paths": paths,
            "active": sum(1 for p in paths if p["state"] in USABLE_STATES),
        }
    return found


def holder_map(kernel_name, sysfs=None):
    """The WWID of the multipath map that holds the SCSI disk ``kernel_name`` (/dev/sdb or sdb) as one
    of its paths, or None: the disk's ``holders`` has a dm device whose uuid is mpath-<wwid>."""
    sysfs = sysfs or SYSFS
    name = os.path.basename(kernel_name or "")
    for holder in sorted(glob.glob(os.path.join(sysfs, "block", name, "holders", "dm-*"))):
        uuid = read_value(os.path.join(sysfs, "block", os.path.basename(holder), "dm", "uuid")) or ""
        if uuid.startswith("mpath-"):
            return uuid[len("mpath-") :]
    return None


def map_wwid(kernel_name, sysfs=None):
    """The WWID when ``kernel_name`` (/dev/dm-3) is a multipath map, else None."""
    sysfs = sysfs or SYSFS
    name = os.path.basename(kernel_name or "")
    if not name.startswith("dm-"):
        return None
    uuid = read_value(os.path.join(sysfs, "block", name, "dm", "uuid")) or ""
    return uuid[len("mpath-") :] if uuid.startswith("mpath-") else None


def disks_by_wwid(sysfs=None):
    """``{wwid: [sdX, ...]}`` of the SCSI disks this host sees, read from ``device/wwid`` (the form
    ``naa.6001405...``, which multipath names ``36001405...``): keyed by multipath's form."""
    sysfs = sysfs or SYSFS
    found = {}
    for wwid_path in sorted(glob.glob(os.path.join(sysfs, "block", "sd*", "device", "wwid"))):
        disk = wwid_path.split(os.sep)[-3]
        wwid = scsi_to_multipath_wwid(read_value(wwid_path) or "")
        if wwid:
            found.setdefault(wwid, []).append(disk)
    return found


def scsi_to_multipath_wwid(sysfs_wwid):
    """sysfs ``device/wwid`` (``naa.6001405abc``, ``eui.``, ``t10.``) as multipath's uid (``36001405abc``).

    multipath takes udev's ID_SERIAL (scsi_id -g), which prefixes the designator type of the VPD page
    0x83 identifier: 3 for NAA, 2 for EUI-64, 1 for T10 vendor ids (spaces squeezed to _), 8 for SCSI names.
    """
    wwid = sysfs_wwid.strip()
    for prefix, digit in (("naa.", "3"), ("eui.", "2"), ("t10.", "1")):
        if wwid.startswith(prefix):
            rest = wwid[len(prefix) :]
            if digit == "1":
                rest = "_".join(rest.split())
            return digit + rest
    return wwid


# --- multipathd's own words -----------------------------------------------------------------------


def parse_maps_json(text):
    """``multipathd show maps json``: ``{wwid: {"name", "dm", "paths": [{"name", "dm_st", "chk_st"}],
    "total", "active"}}``. A path is active when dm has it active and its checker says ready."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StorageError(f"multipathd show maps json gave no JSON ({exc})") from exc
    found = {}
    for entry in data.get("maps", []):
        paths = []
        for group in entry.get("path_groups", []):
            for path in group.get("paths", []):
                paths.append({"name": path.get("dev"), "dm_st": path.get("dm_st"), "chk_st": path.get("chk_st")})
        found[entry.get("uuid")] = {
            "name": entry.get("name"),
            "dm": entry.get("sysfs"),
            "paths": paths,
            "total": len(paths),
            "active": sum(1 for p in paths if p["dm_st"] == "active" and p["chk_st"] == "ready"),
        }
    return found


_LL_MAP = re.compile(r"^(\S+) \((\S+)\) (dm-\d+) ")
_LL_MAP_NOALIAS = re.compile(r"^(\S+) (dm-\d+) ")
# multipath -ll pads its columns ("active ready  running"), and a path being failed shows a checker state of
# two words ("failed i/o pending running"): the dm state is the first word, the device state the last.
_LL_PATH = re.compile(r"(\d+:\d+:\d+:\d+) (\S+) +(\d+:\d+) +(\S+(?: +\S+)+)\s*$")


def parse_multipath_ll(text):
    """``multipath -ll``: ``{wwid: {"name", "dm", "paths": [{"name", "dm_st", "chk_st", "dev_st"}], "total", "active"}}``.

    A map line is ``<name> (<wwid>) dm-N vendor,product`` (with user_friendly_names or an alias) or
    ``<wwid> dm-N vendor,product``; a path line ``|- 2:0:0:1 sdb 8:16 active ready running``.
    """
    found, current = {}, None
    for line in text.splitlines():
        match = _LL_MAP.match(line)
        if match:
            name, wwid, dm = match.groups()
        else:
            match = _LL_MAP_NOALIAS.match(line)
            if match:
                name, dm = match.groups()
                wwid = name
        if match:
            current = found[wwid] = {"name": name, "dm": dm, "paths": [], "total": 0, "active": 0}
            continue
        match = _LL_PATH.search(line)
        if match and current is not None:
            _hcil, dev, _devt, states = match.groups()
            words = states.split()
            dm_st, chk_st, dev_st = words[0], " ".join(words[1:-1]), words[-1]
            current["paths"].append({"name": dev, "dm_st": dm_st, "chk_st": chk_st, "dev_st": dev_st})
            current["total"] += 1
            current["active"] += dm_st == "active" and chk_st == "ready"
    return found


# --- multipath.conf ----------------------------------------------------------------------------------

HEADER = "# Written by flexvdi.storage (role san_client). Edits are replaced: change the role's variables.\n"


def render_conf(wwids, settings):
    """multipath.conf for ``wwids`` (the declared LUNs) with ``settings`` (polling_interval, no_path_retry,
    checker_timeout, find_multipaths, fast_io_fail_tmo): every other WWID is blacklisted, names are the WWIDs."""
    lines = [
        HEADER.rstrip("\n"),
        "defaults {",
        "    user_friendly_names no",
        "    find_multipaths %s" % settings.get("find_multipaths", "strict"),
        "    polling_interval %d" % int(settings["polling_interval"]),
        "    checker_timeout %d" % int(settings.get("checker_timeout", 10)),
        "}",
        # overrides, not defaults: multipath's built-in device table wins over defaults (LIO-ORG has
        # no_path_retry 12 there), overrides win over both, so the declared failover is the live one.
        "overrides {",
        "    no_path_retry %s" % settings["no_path_retry"],
    ]
    if settings.get("fast_io_fail_tmo") is not None:
        # multipathd writes fast_io_fail_tmo into every iSCSI session's recovery_tmo when it adds the path
        # (Debian's default, 5, overrides the node record's replacement_timeout): set it, so the live value
        # is the declared one.
        lines.append("    fast_io_fail_tmo %d" % int(settings["fast_io_fail_tmo"]))
    lines += [
        "}",
        "blacklist {",
        '    wwid ".*"',
        "}",
        "blacklist_exceptions {",
    ]
    lines += ['    wwid "^%s$"' % re.escape(w) for w in sorted(set(wwids))]
    lines.append("}")
    return "\n".join(lines) + "\n"


def conf_settings(text):
    """The defaults and overrides sections' ``key value`` pairs of a multipath.conf (what the failover arithmetic
    reads; overrides come after defaults in what this collection writes, and win)."""
    found, depth, section = {}, 0, None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.endswith("{"):
            depth += 1
            if depth == 1:
                section = line[:-1].strip()
            continue
        if line == "}":
            depth -= 1
            continue
        if depth == 1 and section in ("defaults", "overrides"):
            key, _sep, value = line.partition(" ")
            found[key] = value.strip().strip('"')
    return found
