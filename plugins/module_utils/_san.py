# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's SAN attachment: initiator name, multipath.conf, iSCSI targets. Private to the collection.

The engine of flexvdi.storage.san_client: check the whole declaration first (nothing is written
while an option is wrong), then plan every step with its words and its undo, then apply it (or
only describe it in check mode). The no-op path reads files only: the initiator name file, the
node records, multipath.conf, sysfs (sessions, maps) and the registry.

A CHAP secret goes from the module's arguments into the node record file, written in-process
(temp file 0600, rename): never into a command's arguments, a result, a diff or the registry.
"""

from __future__ import annotations

import os
import time

from . import _iscsi, _multipath
from ._errors import StorageError
from ._fileio import atomic_write, read_text
from ._mounts import read_mountinfo

LUN_POLL = 1
MASK = "********"
_LOGIN_ERRORS = {
    24: "the target refused CHAP (chap_username or chap_password wrong, or the target's ACL lacks this host's "
    "initiator name {initiator}): fix chap_username/chap_password, or the target's ACL",
    19: "the target refused the login (no such target {iqn} at this portal, or no ACL for this host's initiator name "
    "{initiator}): fix iqn, or the target's ACL",
    8: "the portal did not answer in time (unreachable: address, port, firewall, or the target is down): fix portals",
    4: "the portal could not be reached (connection refused or no route): fix portals, or start the target",
    29: "the portal could not be reached: fix portals, or start the target",
    20: "iscsid is not running and could not be started: start iscsid (systemctl start iscsid)",
    12: "the kernel has no iSCSI initiator (modprobe iscsi_tcp): install the kernel's iSCSI modules",
}


def validate(params, resolve=True):
    """Every target checked and normalized: names, portals, CHAP, LUNs; raises before anything runs."""
    targets, names = [], set()
    for index, raw in enumerate(params["targets"] or []):
        if not isinstance(raw, dict):
            raise StorageError(f"targets[{index}] is not a mapping: fix flexvdi_san_targets")
        name = raw.get("name")
        what = f"SAN target {name}" if name else f"targets[{index}]"
        if not name or not isinstance(name, str):
            raise StorageError(f"{what}: name is missing: give every SAN target a unique name")
        if name in names:
            raise StorageError(f"{what}: two targets have this name: give each its own name")
        names.add(name)
        unknown = sorted(set(raw) - set(TARGET_KEYS))
        if unknown:
            raise StorageError(
                f"{what}: unknown option(s) {', '.join(unknown)}: remove them (known: {', '.join(TARGET_KEYS)})"
            )
        state = raw.get("state", "present")
        if state not in ("present", "absent"):
            raise StorageError(f"{what}: state {state!r} is not present or absent: fix state")
        iqn = _iscsi.check_name(raw.get("iqn"), what, "iqn")
        portals = raw.get("portals") or []
        if not portals and state == "present":
            raise StorageError(f"{what}: portals is empty: list the target's portals (address, port)")
        checked = [_iscsi.check_portal(p, what, resolve=resolve) for p in portals]
        keys = [(p["address"], p["port"]) for p in checked]
        if len(set(keys)) != len(keys):
            raise StorageError(f"{what}: portals lists the same address and port twice: fix portals")
        _iscsi.check_chap(raw.get("chap_username"), raw.get("chap_password"), what)
        luns = raw.get("luns") or []
        if not isinstance(luns, list):
            raise StorageError(f"{what}: luns must be a list of WWIDs: fix luns")
        luns = [_multipath.check_wwid(w, what) for w in luns]
        if len(set(luns)) != len(luns):
            raise StorageError(f"{what}: luns lists a WWID twice: fix luns")
        targets.append(
            {
                "name": name,
                "what": what,
                "iqn": iqn,
                "portals": checked,
                "chap_username": raw.get("chap_username"),
                "chap_password": raw.get("chap_password"),
                "luns": luns,
                "state": state,
            }
        )
    iqns = [t["iqn"] for t in targets]
    for t in targets:
        if iqns.count(t["iqn"]) > 1:
            raise StorageError(f"{t['what']}: another target has iqn {t['iqn']}: declare each target once")
    lun_owner = {}
    for t in targets:
        for wwid in t["luns"]:
            if wwid in lun_owner:
                raise StorageError(f"{t['what']}: LUN {wwid} is also one of {lun_owner[wwid]}'s luns: fix luns")
            lun_owner[wwid] = t["what"]
    return targets


# Seconds one sendtargets discovery may take (iscsiadm has no option for it).
DISCOVERY_TIMEOUT = 20

TARGET_KEYS = ("name", "iqn", "portals", "chap_username", "chap_password", "luns", "state", "hosts", "storage")


def timeouts(params):
    return {
        "replacement_timeout": params["replacement_timeout"],
        "noop_out_interval": params["noop_out_interval"],
        "noop_out_timeout": params["noop_out_timeout"],
        "login_timeout": params["login_timeout"],
    }


def check_timeouts(params):
    t = timeouts(params)
    for key, low in (
        ("replacement_timeout", 1),
        ("noop_out_interval", 1),
        ("noop_out_timeout", 1),
        ("login_timeout", 1),
    ):
        if t[key] < low:
            raise StorageError(f"{key} is {t[key]}: it must be at least {low} s: fix {key}")
    if t["login_timeout"] > _iscsi.COMMAND_TIMEOUT - 5:
        raise StorageError(
            f"login_timeout is {t['login_timeout']} s: above {_iscsi.COMMAND_TIMEOUT - 5} a portal that does not "
            "answer would not be reported within 30 s: lower login_timeout"
        )
    if params["polling_interval"] < 1:
        raise StorageError("polling_interval must be at least 1 s: fix polling_interval")
    npr = str(params["no_path_retry"])
    if not (npr in ("fail", "queue") or npr.isdigit()):
        raise StorageError(f"no_path_retry {npr!r} is not a number, fail or queue: fix no_path_retry")
    if params.get("heartbeat_threshold"):
        _iscsi.check_failover(
            _iscsi.failover_seconds(
                t["noop_out_interval"], t["noop_out_timeout"], t["replacement_timeout"], params["polling_interval"]
            ),
            params["heartbeat_threshold"],
            "the SAN timeouts",
            "Raise ocfs2_cluster_heartbeat_threshold to at least {needed}, or lower the iSCSI timeouts",
        )


# --- in use ------------------------------------------------------------------------------------------


def _devices_of(wwid, sysfs, map_info, disks):
    """The kernel names (/dev/dm-3, /dev/sdb...) a LUN has on this host."""
    names = []
    if map_info:
        names.append("/dev/" + map_info["dm"])
        names += ["/dev/" + p["name"] for p in map_info["paths"]]
    names += ["/dev/" + d for d in disks.get(wwid, [])]
    return sorted(set(names))


def users_of(host, wwid, devices, sysfs):
    """What on this host uses one of ``devices`` (a LUN's map and paths), in words: mounts, stacked
    devices, and the registry's volumes and direct storages whose device is one of them."""
    users = []
    for mount in read_mountinfo():
        source = mount.source
        if source.startswith("/dev/") and os.path.realpath(source) in devices:
            users.append(f"{source} is mounted at {mount.mount_point}")
    for dev in devices:
        name = os.path.basename(dev)
        holders = os.path.join(sysfs, "block", name, "holders")
        for holder in sorted(os.listdir(holders)) if os.path.isdir(holders) else []:
            uuid = read_text(os.path.join(sysfs, "block", holder, "dm", "uuid"), default="").strip()
            if not uuid.startswith("mpath-"):
                users.append(f"/dev/{holder} is stacked on {dev}")
    data = host.registry_data()
    for storage, record in sorted(data.get("image_storages", {}).items()):
        for volume, vrec in sorted((record.get("volumes") or {}).items()):
            src = vrec.get("src") or vrec.get("device")
            if src and os.path.realpath(src) in devices:
                users.append(f"volume {volume} of image storage {storage} ({src}) is registered on it")
    for name, record in sorted(data.get("direct_storages", {}).items()):
        src = record.get("device")
        if src and os.path.realpath(src) in devices:
            users.append(f"direct storage {name} ({src}) is registered on it")
    return users


# --- the plan ---------------------------------------------------------------------------------------


class San:
    """One run of flexvdi.storage.san_client on this host."""

    def __init__(self, host):
        self.host = host
        p = host.params
        self.p = p
        self.runner = host.runner
        self.iscsi_dir = p["iscsi_dir"]
        self.sysfs = p["sysfs"]
        self.initiator_file = os.path.join(self.iscsi_dir, "initiatorname.iscsi")

    # ---- initiator name
    def plan_initiator(self, plan, sessions):
        current = _iscsi.read_initiator_name(self.initiator_file)
        wanted = self.p.get("initiator_name")
        if wanted:
            _iscsi.check_name(wanted, "this host's initiator", "initiator_name")
        self.initiator = current
        if wanted and wanted == current:
            return current
        if not wanted and current:
            return current
        if sessions:
            raise StorageError(
                f"initiator_name {wanted} differs from this host's {current} while it has iSCSI sessions "
                f"({', '.join(s['target'] for s in sessions)}): log them out first (state: absent), or keep the name"
            )
        before = read_text(self.initiator_file, default="")
        holder = {}

        def write():
            name = wanted
            if not name:
                _rc, out, _err = self.runner.run(["iscsi-iname"], "generate this host's initiator name (iscsi-iname)")
                name = out.strip()
                _iscsi.check_name(name, "iscsi-iname", "its output")
            holder["name"] = name
            self.initiator = name
            atomic_write(self.initiator_file, _iscsi.initiator_file_text(name), mode=0o600)
            # iscsid reads the name when it starts; no session exists, so a restart cuts nothing.
            self.runner.run(
                ["systemctl", "try-restart", "iscsid.service"], "restart iscsid for the new name", check=False
            )

        def undo():
            if before:
                atomic_write(self.initiator_file, before, mode=0o600)
            elif os.path.exists(self.initiator_file):
                os.unlink(self.initiator_file)

        words = (
            f"set this host's initiator name to {wanted}"
            if wanted
            else "generate this host's own initiator name (iscsi-iname)"
        )
        plan.mkdirs(self.iscsi_dir)
        plan.diffs.append(
            {
                "before_header": self.initiator_file,
                "after_header": self.initiator_file,
                "before": before,
                "after": _iscsi.initiator_file_text(wanted or "<generated by iscsi-iname>"),
            }
        )
        plan.add(f"{words} in {self.initiator_file}", write, undo)
        self.initiator = wanted or "(generated)"
        return self.initiator

    # ---- multipath.conf
    def plan_multipath(self, plan, targets):
        if not self.p["manage_multipath"]:
            return
        path = self.p["multipath_conf"]
        wwids = [w for t in targets if t["state"] == "present" for w in t["luns"]]
        # A LUN of a target being removed stays an exception until its map is flushed (next run drops it).
        wwids += [w for t in targets if t["state"] == "absent" for w in t["luns"] if w in _multipath.maps(self.sysfs)]
        text = _multipath.render_conf(
            wwids,
            {
                "polling_interval": self.p["polling_interval"],
                "no_path_retry": self.p["no_path_retry"],
                "checker_timeout": self.p["checker_timeout"],
                "find_multipaths": "off",
                # multipathd sets each session's recovery_tmo from it: the record's value alone would not hold
                "fast_io_fail_tmo": self.p["replacement_timeout"],
            },
        )
        before = read_text(path, default="")
        running = self.multipathd_running()
        if before == text:
            if not running and any(t["state"] == "present" for t in targets):
                # Every path of a LUN must join its map at login: multipathd runs before any login.
                plan.add(
                    "start multipathd",
                    lambda: self.runner.run(["systemctl", "start", "multipathd.service"], "start multipathd"),
                    lambda: None,
                )
            return

        def write():
            atomic_write(path, text, mode=0o644)
            if running:
                # Maps stay, mounted or not: reconfigure rereads the file; a restart is never used.
                self.runner.run(["multipathd", "reconfigure"], f"apply {path} (multipathd reconfigure)")
            else:
                self.runner.run(["systemctl", "start", "multipathd.service"], "start multipathd")

        def undo():
            if before:
                atomic_write(path, before, mode=0o644)
            elif os.path.exists(path):
                os.unlink(path)
            if self.multipathd_running():
                self.runner.run(["multipathd", "reconfigure"], f"apply the restored {path}", check=False)

        plan.diffs.append({"before_header": path, "after_header": path, "before": before, "after": text})
        plan.add(
            f"update {path} and " + ("apply it (multipathd reconfigure)" if running else "start multipathd"),
            write,
            undo,
        )

    def multipathd_running(self):
        pid = read_text(self.p["multipathd_pidfile"], default="").strip()
        return pid.isdigit() and os.path.exists(f"/proc/{pid}")

    # ---- one target
    def plan_target(self, plan, target, sessions, after):
        if target["state"] == "absent":
            return self.plan_absent(plan, target, sessions, after)
        iqn, what = target["iqn"], target["what"]
        records = _iscsi.node_records(self.iscsi_dir, iqn)
        mine = [s for s in sessions if s["target"] == iqn]
        declared = {(p["address"], p["port"]): p for p in target["portals"]}
        wanted = _iscsi.record_settings(timeouts(self.p), target["chap_username"], target["chap_password"])
        # Records of portals the declaration no longer lists: logged out (one at a time) and deleted.
        for key, recs in sorted(records.items()):
            if key in declared:
                continue
            portal = {"address": key[0], "port": key[1]}
            for session in [s for s in mine if (s["address"], s["port"]) == key]:
                if not any((s["address"], s["port"]) in declared and s["state"] == "LOGGED_IN" for s in mine):
                    raise StorageError(
                        f"{what}: portal {_iscsi.portal_text(portal)} is no longer declared but carries this host's only "
                        "session to the target: declare the new portals and run once (they log in), then drop the old one"
                    )
                self._plan_logout(plan, iqn, portal, session, what)
            for rec in recs:
                self._plan_delete_record(plan, iqn, portal, rec, what)
        missing = [p for key, p in declared.items() if key not in records]
        if missing:
            self._plan_discover(plan, target, missing)
        for key, portal in declared.items():
            if key not in records:
                self._plan_new_record(plan, iqn, portal, wanted, what)
                continue
            for rec in records[key]:
                self._plan_update_record(plan, rec, portal, wanted, what)
        logins = []
        for key, portal in declared.items():
            session = next((s for s in mine if (s["address"], s["port"]) == key), None)
            if session is None:
                logins.append(portal)
                self._plan_login(plan, target, portal)
            elif session["recovery_tmo"] is not None and session["recovery_tmo"] != self.p["replacement_timeout"]:
                self._plan_recovery_tmo(plan, session)
        lun_state = self.lun_state(target)
        if logins:
            self._plan_wait_luns(plan, target, len(declared))
        after.setdefault("san_targets", {})[target["name"]] = {
            "iqn": iqn,
            "portals": [_iscsi.portal_text(p) for p in target["portals"]],
            "luns": {w: {"paths": len(declared)} for w in target["luns"]},
        }
        return {"name": target["name"], "iqn": iqn, "luns": list(lun_state.values())}

    def lun_state(self, target):
        maps = _multipath.maps(self.sysfs)
        disks = _multipath.disks_by_wwid(self.sysfs)
        found = {}
        for wwid in target["luns"]:
            m = maps.get(wwid)
            found[wwid] = {
                "wwid": wwid,
                "device": _multipath.map_device(wwid),
                "map": bool(m),
                "paths": len(m["paths"]) if m else len(disks.get(wwid, [])),
                "active": m["active"] if m else 0,
                "expected": len(target["portals"]),
            }
        return found

    def _plan_discover(self, plan, target, portals):
        iqn, what = target["iqn"], target["what"]

        def do():
            for portal in portals:
                argv = [
                    "iscsiadm",
                    "-m",
                    "discovery",
                    "-t",
                    "sendtargets",
                    "-p",
                    _iscsi.portal_text(portal),
                    "-o",
                    "nonpersistent",
                ]
                # Discovery's own timeouts come only from iscsid.conf (discovery.sendtargets.*: 95 s against a
                # portal that drops packets, measured): bound it here, so an unreachable portal is an error
                # within 30 s. A nonpersistent discovery records nothing, so nothing is left behind.
                rc, out, err = self.runner.run(
                    ["timeout", "--kill-after=2", str(DISCOVERY_TIMEOUT)] + argv, what, check=False
                )
                if rc in (124, 137):
                    raise StorageError(
                        f"{what}: portal {_iscsi.portal_text(portal)} did not answer discovery within "
                        f"{DISCOVERY_TIMEOUT} s (unreachable, or a firewall drops iSCSI): fix portals, or the network"
                    )
                if rc != 0:
                    # A target that asks CHAP for discovery too answers no list: the login says more.
                    if rc in (24, 19):
                        continue
                    raise StorageError(self._login_error(rc, err or out, target, portal, "discovery"))
                offered = sorted({t["target"] for t in _iscsi.parse_discovery(out)})
                if offered and iqn not in offered:
                    raise StorageError(
                        f"{what}: portal {_iscsi.portal_text(portal)} does not serve {iqn} (it offers "
                        f"{', '.join(offered)}): fix iqn or portals"
                    )

        plan.wait(
            "ask {} which targets they serve (sendtargets, nothing recorded): {} must be among them".format(
                ", ".join(_iscsi.portal_text(p) for p in portals), iqn
            ),
            do,
        )

    def _plan_new_record(self, plan, iqn, portal, wanted, what):
        text = _iscsi.portal_text(portal)

        def do():
            self.runner.run(
                ["iscsiadm", "-m", "node", "-o", "new", "-T", iqn, "-p", text], what, timeout=_iscsi.COMMAND_TIMEOUT
            )
            recs = _iscsi.node_records(self.iscsi_dir, iqn).get((portal["address"], portal["port"]), [])
            if not recs:
                raise StorageError(f"{what}: iscsiadm made no node record for {text} under {self.iscsi_dir}/nodes")
            for rec in recs:
                self._write_record(rec["path"], _iscsi.read_record(rec["path"]), wanted)

        def undo():
            self._delete_record_files(iqn, portal)

        shown = {k: (MASK if k in _iscsi.SECRET_KEYS and v else v) for k, v in wanted.items() if v is not None}
        plan.diffs.append(
            {
                "before_header": f"node record {iqn} {text}",
                "after_header": f"node record {iqn} {text}",
                "before": "",
                "after": "".join(f"{k} = {v}\n" for k, v in shown.items()),
            }
        )
        plan.add(
            f"create the node record of {iqn} at {text} (login at boot, timeouts{', CHAP' if wanted.get('node.session.auth.username') else ''})",
            do,
            undo,
        )

    def _write_record(self, path, before, wanted):
        atomic_write(path, _iscsi.render_record(before, wanted), mode=0o600)

    def _delete_record_files(self, iqn, portal):
        for rec in _iscsi.node_records(self.iscsi_dir, iqn).get((portal["address"], portal["port"]), []):
            if os.path.isdir(rec["entry"]):
                for name in os.listdir(rec["entry"]):
                    os.unlink(os.path.join(rec["entry"], name))
                os.rmdir(rec["entry"])
            elif os.path.exists(rec["entry"]):
                os.unlink(rec["entry"])
        base = os.path.join(self.iscsi_dir, "nodes", iqn)
        if os.path.isdir(base) and not os.listdir(base):
            os.rmdir(base)

    def _plan_update_record(self, plan, rec, portal, wanted, what):
        before = _iscsi.read_record(rec["path"])
        current = _iscsi.parse_record(before)
        changed = _iscsi.record_differences(current, wanted)
        mode_ok = (os.stat(rec["path"]).st_mode & 0o077) == 0
        if not changed and mode_ok:
            return

        def masked(settings):
            return "".join(
                f"{k} = {MASK if k in _iscsi.SECRET_KEYS and settings.get(k) else settings.get(k)}\n"
                for k in wanted
                if settings.get(k) is not None
            )

        plan.diffs.append(
            {
                "before_header": rec["path"],
                "after_header": rec["path"],
                "before": masked(current),
                "after": masked({k: v for k, v in wanted.items() if v is not None}),
            }
        )
        words = ", ".join(changed) if changed else "mode 0600"
        plan.add(
            f"update the node record {rec['path']} ({words})",
            lambda: self._write_record(rec["path"], before, wanted),
            lambda: atomic_write(rec["path"], before, mode=0o600),
        )

    def _plan_delete_record(self, plan, iqn, portal, rec, what):
        before = _iscsi.read_record(rec["path"])

        def do():
            self._delete_record_files(iqn, portal)

        def undo():
            os.makedirs(os.path.dirname(rec["path"]), exist_ok=True)
            atomic_write(rec["path"], before, mode=0o600)

        plan.add(f"delete the node record of {iqn} at {_iscsi.portal_text(portal)} (no longer declared)", do, undo)

    def _login_error(self, rc, detail, target, portal, verb="login"):
        words = _LOGIN_ERRORS.get(rc)
        text = _iscsi.portal_text(portal)
        if words:
            words = words.format(initiator=self.initiator or "(unknown)", iqn=target["iqn"])
        else:
            lines = [line.strip() for line in (detail or "").splitlines() if line.strip()]
            words = "; ".join(lines)[-300:] or "no output"
        return f"{target['what']}: {verb} to {target['iqn']} at {text} failed (iscsiadm rc={rc}): {words}"

    def _plan_login(self, plan, target, portal):
        iqn, text = target["iqn"], _iscsi.portal_text(portal)

        def do():
            argv = ["iscsiadm", "-m", "node", "-T", iqn, "-p", text, "--login"]
            rc, out, err = self.runner.run(argv, target["what"], check=False, timeout=_iscsi.COMMAND_TIMEOUT)
            if rc == 15:  # a session exists already (another login won the race): nothing to undo twice
                return
            if rc != 0:
                raise StorageError(self._login_error(rc, err or out, target, portal))

        def undo():
            self.runner.run(
                ["iscsiadm", "-m", "node", "-T", iqn, "-p", text, "--logout"],
                target["what"],
                check=False,
                timeout=_iscsi.COMMAND_TIMEOUT,
            )

        plan.add(f"log in to {iqn} at {text}", do, undo)

    def _plan_logout(self, plan, iqn, portal, session, what):
        text = _iscsi.portal_text(portal)

        def do():
            self.runner.run(
                ["iscsiadm", "-m", "node", "-T", iqn, "-p", text, "--logout"], what, timeout=_iscsi.COMMAND_TIMEOUT
            )

        def undo():
            self.runner.run(
                ["iscsiadm", "-m", "node", "-T", iqn, "-p", text, "--login"],
                what,
                check=False,
                timeout=_iscsi.COMMAND_TIMEOUT,
            )

        plan.add(f"log out of {iqn} at {text} (session {session['sid']})", do, undo)

    def _plan_recovery_tmo(self, plan, session):
        path = os.path.join(self.sysfs, "class", "iscsi_session", "session%d" % session["sid"], "recovery_tmo")
        old, new = session["recovery_tmo"], self.p["replacement_timeout"]

        def put(value):
            with open(path, "w", encoding="ascii") as handle:
                handle.write(str(value))

        plan.add(
            f"set the live replacement timeout of session {session['sid']} ({session['target']}) from {old} s to {new} s",
            lambda: put(new),
            lambda: put(old),
        )

    def _plan_wait_luns(self, plan, target, expected):
        limit = self.p["lun_timeout"]
        manage = self.p["manage_multipath"]

        def do():
            deadline = time.monotonic() + limit
            while True:
                state = self.lun_state(target)
                short = [
                    s
                    for s in state.values()
                    if (manage and (not s["map"] or s["active"] < expected)) or (not manage and s["paths"] < expected)
                ]
                if not short:
                    return
                if time.monotonic() >= deadline:
                    words = "; ".join(
                        f"LUN {s['wwid']}: "
                        + (
                            f"multipath map with {s['active']} of {expected} paths active"
                            if s["map"]
                            else (
                                f"{s['paths']} of {expected} paths and no multipath map"
                                if s["paths"]
                                else "not seen at all"
                            )
                        )
                        for s in short
                    )
                    raise StorageError(
                        f"{target['what']}: after the login, within {limit} s: {words}. The target does not map that LUN "
                        f"to this host's initiator name ({self.initiator}), or the WWID in luns is wrong "
                        "(/lib/udev/scsi_id -g -d /dev/sdX tells a disk's): fix luns or the target's LUN mapping"
                    )
                time.sleep(LUN_POLL)

        if target["luns"]:
            plan.wait(
                f"wait up to {limit} s for LUN(s) {', '.join(target['luns'])} of {target['iqn']} "
                f"({'one multipath map each with ' if manage else ''}{expected} path(s))",
                do,
            )

    def plan_absent(self, plan, target, sessions, after):
        iqn, what = target["iqn"], target["what"]
        mine = [s for s in sessions if s["target"] == iqn]
        maps = _multipath.maps(self.sysfs)
        disks = _multipath.disks_by_wwid(self.sysfs)
        session_disks = {d["name"] for s in mine for d in s["disks"]}
        wwids = set(target["luns"])
        for wwid, m in maps.items():
            if any(p["name"] in session_disks for p in m["paths"]):
                wwids.add(wwid)
        for s in mine:
            for d in s["disks"]:
                w = _multipath.scsi_to_multipath_wwid(d.get("wwid", ""))
                if w:
                    wwids.add(w)
        users = []
        for wwid in sorted(wwids):
            devices = _devices_of(wwid, self.sysfs, maps.get(wwid), disks)
            users += [f"LUN {wwid}: {u}" for u in users_of(self.host, wwid, devices, self.sysfs)]
        if users:
            raise StorageError(
                f"{what}: state absent would cut this host off its LUNs, and they are in use: {'; '.join(users)}. "
                "Nothing was logged out: remove those volumes or storages (state: absent), or unmount them, first"
            )
        for wwid in sorted(w for w in wwids if w in maps):
            plan.add(
                f"flush the multipath map of LUN {wwid} (multipath -f)",
                lambda w=wwid: self.runner.run(["multipath", "-f", w], what, timeout=_iscsi.COMMAND_TIMEOUT),
                None,
            )
        for s in mine:
            self._plan_logout(plan, iqn, {"address": s["address"], "port": s["port"]}, s, what)
        for key, recs in sorted(_iscsi.node_records(self.iscsi_dir, iqn).items()):
            for rec in recs:
                self._plan_delete_record(plan, iqn, {"address": key[0], "port": key[1]}, rec, what)
        after.get("san_targets", {}).pop(target["name"], None)
        if "san_targets" in after and not after["san_targets"]:
            del after["san_targets"]
        return {"name": target["name"], "iqn": iqn, "state": "absent"}


def converge(host):
    """flexvdi.storage.san_client: check everything, then one plan for the initiator, multipath.conf and targets."""
    p = host.params
    targets = validate(p)
    check_timeouts(p)
    san = San(host)
    live = _iscsi.sessions(san.sysfs)
    results = []

    def edit(before, after, plan):
        san.plan_initiator(plan, live)
        san.plan_multipath(plan, targets)
        for target in targets:
            results.append(san.plan_target(plan, target, live, after))

    result, _after = host.transaction(edit)
    result["initiator_name"] = san.initiator
    result["targets"] = results
    result["services"] = services_to_enable(p["services"])
    result["missing_packages"] = missing_packages(p.get("packages") or [], p.get("dpkg_status") or DPKG_STATUS)
    return result


DPKG_STATUS = "/var/lib/dpkg/status"


def missing_packages(names, status_path=DPKG_STATUS):
    """Which of ``names`` dpkg does not have installed (its status file, read in-process)."""
    installed = set()
    for stanza in read_text(status_path, default="").split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            key, sep, value = line.partition(":")
            if sep and not line[:1].isspace():
                fields[key] = value.strip()
        if fields.get("Status", "").split()[1:] == ["ok", "installed"]:
            installed.add(fields.get("Package"))
    return [n for n in names if n not in installed]


def services_to_enable(units, root="/"):
    """Which of ``units`` have no link in a .wants directory of /etc/systemd/system (not enabled)."""
    import glob

    missing = []
    for unit in units:
        pattern = os.path.join(root, "etc/systemd/system", "*.wants", unit)
        if not glob.glob(pattern):
            missing.append(unit)
    return missing
