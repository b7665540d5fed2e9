"""SAN: open-iscsi and multipath formats, the declaration's checks, the failover arithmetic, and the
san_client plan against a sysfs tree and node records in a temporary directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _fakes import FakeModule

from ansible_collections.flexvdi.storage.plugins.module_utils import _iscsi, _multipath, _san
from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError
from ansible_collections.flexvdi.storage.plugins.module_utils._host import Host

FIXTURES = Path(__file__).parent / "fixtures" / "san"
IQN = "iqn.2026-12.lab.flexvdi:san"
WWID = "36001405d2b5c4e1f8a7b3c9d0e1f2a3b"
SECRET = "s3cret-chap-pw"


def fixture(name):
    return (FIXTURES / name).read_text()


# --- parsers -------------------------------------------------------------------------------------------


def test_session_p3_two_portals_one_failed():
    sessions = _iscsi.parse_session_p3(fixture("iscsiadm_session_P3.txt"))
    assert [(s["target"], s["address"], s["port"], s["tpgt"], s["sid"], s["state"]) for s in sessions] == [
        (IQN, "10.251.0.20", 3260, 1, 1, "LOGGED_IN"),
        (IQN, "10.251.1.20", 3260, 1, 2, "FAILED"),
    ]
    assert sessions[0]["disks"] == [{"name": "sdb", "state": "running"}]
    assert sessions[1]["disks"] == [{"name": "sdc", "state": "transport-offline"}]
    assert sessions[0]["recovery_tmo"] == 15
    assert sessions[0]["username"] == "flexvdi"
    assert "password" not in sessions[0]


def test_node_list_real_output_static_record_has_no_tpgt():
    assert _iscsi.parse_node_list(fixture("iscsiadm_node.txt")) == [
        {"address": "10.251.0.20", "port": 3260, "tpgt": None, "target": IQN}
    ]


def test_node_list_ipv6_and_tpgt():
    text = "[fd00::20]:3260,1 iqn.2026-12.lab.flexvdi:san\n10.0.0.1:3261,2 iqn.x.y:z\n"
    assert _iscsi.parse_node_list(text)[0] == {"address": "fd00::20", "port": 3260, "tpgt": 1, "target": IQN}
    assert _iscsi.parse_node_list(text)[1]["tpgt"] == 2


def test_maps_json_counts_active_paths():
    maps = _multipath.parse_maps_json(fixture("multipathd_show_maps.json"))
    assert maps[WWID]["total"] == 2 and maps[WWID]["active"] == 1 and maps[WWID]["dm"] == "dm-0"
    assert [p["name"] for p in maps[WWID]["paths"]] == ["sdb", "sdc"]


def test_multipath_ll_agrees_with_json():
    ll = _multipath.parse_multipath_ll(fixture("multipath_ll.txt"))
    js = _multipath.parse_maps_json(fixture("multipathd_show_maps.json"))
    assert {w: (m["total"], m["active"]) for w, m in ll.items()} == {
        w: (m["total"], m["active"]) for w, m in js.items()
    }


def test_multipath_ll_with_alias():
    text = (
        "mpatha (360014051) dm-2 LIO-ORG,disk\nsize=1G features='0' hwhandler='1 alua' wp=rw\n"
        "`-+- policy='service-time 0' prio=50 status=active\n  `- 4:0:0:1 sdd 8:48 active ready running\n"
    )
    assert _multipath.parse_multipath_ll(text) == {
        "360014051": {
            "name": "mpatha",
            "dm": "dm-2",
            "paths": [{"name": "sdd", "dm_st": "active", "chk_st": "ready", "dev_st": "running"}],
            "total": 1,
            "active": 1,
        }
    }


def test_maps_json_garbage_is_an_error():
    with pytest.raises(StorageError, match="no JSON"):
        _multipath.parse_maps_json("error: not running")


def test_real_node_record_parses_and_renders():
    text = fixture("node_record_static.txt")
    settings = _iscsi.parse_record(text)
    assert settings["node.name"] == IQN and settings["node.startup"] == "manual"
    assert settings["node.session.timeo.replacement_timeout"] == "120"
    wanted = _iscsi.record_settings(
        {"replacement_timeout": 15, "noop_out_interval": 5, "noop_out_timeout": 5, "login_timeout": 15},
        "flexvdi",
        SECRET,
    )
    out = _iscsi.render_record(text, wanted)
    again = _iscsi.parse_record(out)
    assert {k: again.get(k) for k in wanted} == wanted
    assert out.rstrip().endswith("# END RECORD") and out.startswith("# BEGIN RECORD 2.1.8")
    # every line iscsiadm wrote is still there, in order
    kept = [line for line in text.splitlines() if line.split(" = ")[0] not in wanted]
    assert [line for line in out.splitlines() if line in kept] == kept
    assert _iscsi.record_differences(again, wanted) == []
    # dropping CHAP removes the secret's line
    plain = _iscsi.render_record(out, _iscsi.record_settings({"replacement_timeout": 15, "noop_out_interval": 5,
                                                             "noop_out_timeout": 5, "login_timeout": 15}))  # fmt: skip
    assert SECRET not in plain and "node.session.auth.authmethod = None" in plain


@pytest.mark.parametrize(
    ("sysfs", "multipath"),
    [("naa.6001405d2b5c4e1f8a7b3c9d0e1f2a3b", WWID), ("eui.0025385b71b01234", "20025385b71b01234"),
     ("t10.ATA     QEMU HARDDISK   QM00001", "1ATA_QEMU_HARDDISK_QM00001"), ("36001405abc", "36001405abc")],
)  # fmt: skip
def test_scsi_wwid_as_multipath_names_it(sysfs, multipath):
    assert _multipath.scsi_to_multipath_wwid(sysfs) == multipath


# --- declaration ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        IQN,
        "iqn.1993-08.org.debian:01:44a3ce7ab7c",
        "iqn.2003-01.org.linux-iscsi.nas.x8664:sn.1234",
        "eui.02004567A425678D",
    ],
)
def test_valid_iscsi_names(name):
    assert _iscsi.check_name(name, "t", "iqn") == name


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("IQN.2026-12.lab.flexvdi:san", "lower case"),
        ("iqn.2026-13.lab.flexvdi:san", "not an iSCSI name"),
        ("iqn.26-12.lab:san", "not an iSCSI name"),
        ("iqn.2026-12.lab flexvdi", "not an iSCSI name"),
        ("*", "not an iSCSI name"),
        ("eui.123", "not an iSCSI name"),
        ("iqn.2026-12.lab:" + "x" * 220, "not an iSCSI name"),
        ("", "is empty"),
    ],
)
def test_invalid_iscsi_names_name_the_option(name, words):
    with pytest.raises(StorageError, match=words) as err:
        _iscsi.check_name(name, "SAN target a", "iqn")
    assert "iqn" in err.value.msg


@pytest.mark.parametrize(
    ("portal", "words"),
    [
        ({"address": "10.0.0.1", "port": 0}, "not a TCP port"),
        ({"address": "10.0.0.1", "port": 65536}, "not a TCP port"),
        ({"address": "10.0.0.1", "port": "x"}, "not a TCP port"),
        ({"address": "no-such-host.invalid"}, "does not resolve"),
        ({"address": "bad host!"}, "neither an IP address nor a host name"),
        ({"port": 3260}, "needs an address"),
        ({"address": "10.0.0.1", "prot": 3260}, "unknown keys prot"),
    ],
)
def test_bad_portals(portal, words):
    with pytest.raises(StorageError, match=words) as err:
        _iscsi.check_portal(portal, "SAN target a")
    assert "fix portals" in err.value.msg


def test_portal_defaults_and_ipv6():
    assert _iscsi.check_portal({"address": "10.0.0.1"}, "t") == {"address": "10.0.0.1", "port": 3260}
    assert _iscsi.portal_text(_iscsi.check_portal({"address": "[fd00::1]", "port": "3261"}, "t")) == "[fd00::1]:3261"
    assert _iscsi.check_portal({"address": "localhost"}, "t")["address"] in ("127.0.0.1", "::1")


@pytest.mark.parametrize(
    ("user", "password", "words"),
    [
        ("flexvdi", "tiny1", "has 5 characters; a CHAP secret needs 12 to 255"),
        ("flexvdi", "x" * 256, "has 256 characters"),
        ("flexvdi", "with blank inside", "blank"),
        ("flexvdi", "ñññññññññññññ", "non-ASCII"),
        ("flex vdi", SECRET, "chap_username 'flex vdi' is not a CHAP name"),
        ("flexvdi", None, "set chap_password"),
        (None, SECRET, "set chap_username"),
    ],
)
def test_chap_the_target_cannot_take(user, password, words):
    with pytest.raises(StorageError, match=words) as err:
        _iscsi.check_chap(user, password, "SAN target a")
    if password:
        assert password not in err.value.msg


def test_declaration_duplicates_and_wwids():
    base = {"name": "a", "iqn": IQN, "portals": [{"address": "10.0.0.1"}], "luns": [WWID]}
    with pytest.raises(StorageError, match="two targets have this name"):
        _san.validate({"targets": [base, dict(base)]})
    with pytest.raises(StorageError, match="another target has iqn"):
        _san.validate({"targets": [base, dict(base, name="b", luns=[])]})
    with pytest.raises(StorageError, match="same address and port twice"):
        _san.validate(
            {"targets": [dict(base, portals=[{"address": "10.0.0.1"}, {"address": "10.0.0.1", "port": 3260}])]}
        )
    with pytest.raises(StorageError, match="not a WWID.*fix luns"):
        _san.validate({"targets": [dict(base, luns=["/dev/sdb"])]})
    with pytest.raises(StorageError, match="unknown option"):
        _san.validate({"targets": [dict(base, chap_pasword="x")]})
    with pytest.raises(StorageError, match="portals is empty"):
        _san.validate({"targets": [dict(base, portals=[])]})
    assert _san.validate({"targets": [base]})[0]["portals"] == [{"address": "10.0.0.1", "port": 3260}]


# --- failover arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("noop_i", "noop_t", "repl", "poll", "threshold", "ok"),
    [
        (5, 5, 15, 5, 31, True),  # the defaults: 30 s + 2 s within 60 s
        (5, 5, 120, 5, 31, False),  # open-iscsi's own replacement_timeout with o2cb's default
        (5, 5, 120, 5, 61, False),  # 135 + 2 > 120
        (5, 5, 120, 5, 70, True),  # 135 + 2 <= 138
        (5, 5, 44, 4, 31, True),  # 58 + 2 == 60: still in time
        (5, 5, 45, 4, 31, False),  # 59 + 2 > 60
    ],
)
def test_failover_against_o2cb_dead_time(noop_i, noop_t, repl, poll, threshold, ok):
    failover = _iscsi.failover_seconds(noop_i, noop_t, repl, poll)
    if ok:
        assert _iscsi.check_failover(failover, threshold, "t", "Raise it to {needed}") == (threshold - 1) * 2
        return
    with pytest.raises(StorageError) as err:
        _iscsi.check_failover(failover, threshold, "t", "Raise ocfs2_cluster_heartbeat_threshold to at least {needed}")
    msg = err.value.msg
    assert f"{failover} s" in msg and f"{(threshold - 1) * 2} s" in msg and "ocfs2_cluster_heartbeat_threshold" in msg
    needed = int(msg.split("to at least ")[1].split()[0])
    assert (needed - 1) * 2 >= failover + 2 and (needed - 2) * 2 < failover + 2


def test_multipath_conf_blacklists_all_but_the_luns():
    text = _multipath.render_conf([WWID, WWID], {"polling_interval": 5, "no_path_retry": "3", "find_multipaths": "off"})
    assert "user_friendly_names no" in text and 'wwid ".*"' in text
    assert text.count(WWID) == 1 and f'wwid "^{WWID}$"' in text
    assert _multipath.conf_settings(text)["polling_interval"] == "5"
    assert _multipath.conf_settings(text)["no_path_retry"] == "3"


# --- the plan, on a fake sysfs and /etc/iscsi ----------------------------------------------------------


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_session(sysfs, sid, address, disk, wwid=WWID, state="LOGGED_IN", disk_state="running", tmo=15):
    s = sysfs / "class" / "iscsi_session" / f"session{sid}"
    write(s / "targetname", IQN + "\n")
    write(s / "state", state + "\n")
    write(s / "tpgt", "1\n")
    write(s / "recovery_tmo", f"{tmo}\n")
    c = sysfs / "class" / "iscsi_connection" / f"connection{sid}:0"
    write(c / "persistent_address", address + "\n")
    write(c / "persistent_port", "3260\n")
    write(c / "ping_tmo", "5\n")
    write(c / "recv_tmo", "5\n")
    scsi = s / "device" / f"target{sid}:0:0" / f"{sid}:0:0:0"
    write(scsi / "state", disk_state + "\n")
    write(scsi / "wwid", "naa." + wwid[1:] + "\n")
    (scsi / "block" / disk).mkdir(parents=True)
    write(sysfs / "block" / disk / "device" / "state", disk_state + "\n")
    write(sysfs / "block" / disk / "device" / "wwid", "naa." + wwid[1:] + "\n")


def make_map(sysfs, dm, wwid, paths):
    write(sysfs / "block" / dm / "dm" / "uuid", f"mpath-{wwid}\n")
    write(sysfs / "block" / dm / "dm" / "name", f"{wwid}\n")
    (sysfs / "block" / dm / "slaves").mkdir(parents=True)
    for p in paths:
        (sysfs / "block" / dm / "slaves" / p).mkdir()
        (sysfs / "block" / p / "holders").mkdir(parents=True, exist_ok=True)
        (sysfs / "block" / p / "holders" / dm).mkdir()


@pytest.fixture
def env(tmp_path):
    iscsi = tmp_path / "iscsi"
    write(iscsi / "initiatorname.iscsi", "InitiatorName=iqn.1993-08.org.debian:01:node1a\n")
    sysfs = tmp_path / "sys"
    (sysfs / "class" / "iscsi_session").mkdir(parents=True)
    (sysfs / "block").mkdir(parents=True)
    write(tmp_path / "multipathd.pid", "%d\n" % os.getpid())  # multipathd runs
    return tmp_path


def params(env, **over):
    p = {
        "targets": [
            {
                "name": "array1",
                "iqn": IQN,
                "portals": [{"address": "10.251.0.20"}, {"address": "10.251.1.20"}],
                "chap_username": "flexvdi",
                "chap_password": SECRET,
                "luns": [WWID],
                "state": "present",
            }
        ],
        "initiator_name": None,
        "replacement_timeout": 15,
        "noop_out_interval": 5,
        "noop_out_timeout": 5,
        "login_timeout": 15,
        "lun_timeout": 1,
        "manage_multipath": True,
        "polling_interval": 5,
        "no_path_retry": "3",
        "checker_timeout": 10,
        "heartbeat_threshold": None,
        "multipath_conf": str(env / "multipath.conf"),
        "multipathd_pidfile": str(env / "multipathd.pid"),
        "iscsi_dir": str(env / "iscsi"),
        "sysfs": str(env / "sys"),
        "services": [],
        "registry": str(env / "storage.json"),
        "inventory_hostname": "node1",
        "inventory_hosts": None,
    }
    p.update(over)
    return p


class SanModule(FakeModule):
    """iscsiadm -o new writes a static record as the real one does; logins make sessions in the fake sysfs."""

    def __init__(self, params, env, login_rc=0, luns_appear=True, discovery_rc=0):
        super().__init__(params, {})
        self.env, self.login_rc, self.luns_appear = env, login_rc, luns_appear
        self.discovery_rc = discovery_rc
        self.logged_in = []

    def answer(self, argv):
        if argv[:5] == ["iscsiadm", "-m", "node", "-o", "new"]:
            iqn, portal = argv[6], argv[8]
            address, port = portal.rsplit(":", 1)
            write(self.env / "iscsi" / "nodes" / iqn / f"{address},{port}", fixture("node_record_static.txt")
                  .replace("10.251.0.20", address))  # fmt: skip
            return 0, "New iSCSI node added", ""
        if argv[:2] == ["iscsiadm", "-m"] and argv[2] == "discovery":
            if self.discovery_rc:
                return self.discovery_rc, "", ""
            return 0, f"{argv[6]},1 {IQN}\n", ""
        if argv[-1] == "--login":
            if self.login_rc:
                return (
                    self.login_rc,
                    "",
                    "iscsiadm: initiator reported error (24 - iSCSI login failed due to authorization failure)",
                )
            address = argv[6].rsplit(":", 1)[0]
            self.logged_in.append(address)
            n = len(self.logged_in)
            if self.luns_appear:
                make_session(self.env / "sys", n, address, "sd" + "bcdefg"[n - 1])
            return 0, "", ""
        if argv[-1] == "--logout":
            return 0, "", ""
        return 0, "", ""


def run(module):
    return _san.converge(Host(module))


def test_first_run_plans_records_logins_and_wait_and_keeps_the_secret_out(env):
    module = SanModule(params(env), env)
    result = run(module)
    words = " | ".join(result["actions"])
    assert "create the node record of %s at 10.251.0.20:3260" % IQN in words
    assert "log in to %s at 10.251.1.20:3260" % IQN in words
    assert "wait up to 1 s for LUN(s) %s" % WWID in words
    assert "update %s" % (env / "multipath.conf") in words
    assert module.commands == []  # check mode runs nothing
    assert not (env / "iscsi" / "nodes").exists() and not (env / "multipath.conf").exists()
    assert SECRET not in json.dumps(result)


def test_real_run_then_noop(env):
    module = SanModule(params(env), env)
    module.check_mode = False
    make_map(env / "sys", "dm-0", WWID, ["sdb", "sdc"])
    result = run(module)
    assert result["changed"] and SECRET not in json.dumps(result)
    logins = [c for c in module.commands if c[-1] == "--login"]
    assert [c[6] for c in logins] == ["10.251.0.20:3260", "10.251.1.20:3260"]
    record = env / "iscsi" / "nodes" / IQN / "10.251.0.20,3260"
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    settings = _iscsi.parse_record(record.read_text())
    assert settings["node.session.auth.password"] == SECRET and settings["node.startup"] == "automatic"
    assert all(SECRET not in " ".join(c) for c in module.commands)
    registry = json.loads((env / "storage.json").read_text())
    assert registry["san_targets"]["array1"]["luns"] == {WWID: {"paths": 2}}
    assert SECRET not in (env / "storage.json").read_text()
    # again: nothing to do, no command at all
    again = SanModule(params(env), env)
    again.check_mode = False
    result = run(again)
    assert not result["changed"], result["actions"]
    assert again.commands == []
    assert ["multipathd", "reconfigure"] in module.commands
    assert ["systemctl", "start", "multipathd.service"] not in module.commands
    assert result["targets"][0]["luns"][0]["active"] == 2


def test_wrong_chap_leaves_no_record_and_names_the_fix(env):
    module = SanModule(params(env), env, login_rc=24)
    module.check_mode = False
    with pytest.raises(StorageError) as err:
        run(module)
    msg = err.value.msg
    assert "refused CHAP" in msg and "chap_username/chap_password" in msg and SECRET not in msg
    assert not (env / "iscsi" / "nodes" / IQN).exists()
    assert not (env / "multipath.conf").exists()
    assert not (env / "storage.json").exists()


def test_unreachable_portal_is_an_error_within_the_discovery_bound(env):
    # iscsiadm's discovery waited 95 s on a dropped portal in the lab (iscsid.conf's timeouts): timeout(1)
    # stops it at DISCOVERY_TIMEOUT (rc 124), before any record is made
    module = SanModule(params(env), env, discovery_rc=124)
    module.check_mode = False
    with pytest.raises(StorageError) as err:
        run(module)
    assert "did not answer discovery within 20 s" in err.value.msg and "fix portals" in err.value.msg
    discovery = [c for c in module.commands if c[:3] == ["iscsiadm", "-m", "discovery"]]
    assert len(discovery) == 1 and _san.DISCOVERY_TIMEOUT + 2 <= 30
    assert not (env / "iscsi" / "nodes" / IQN).exists()
    assert not any(c[-1] == "--login" for c in module.commands)


def test_missing_lun_after_login_is_named_and_everything_is_undone(env):
    module = SanModule(params(env), env, luns_appear=False)
    module.check_mode = False
    with pytest.raises(StorageError) as err:
        run(module)
    assert f"LUN {WWID}: not seen at all" in err.value.msg and "fix luns" in err.value.msg
    assert [c[-1] for c in module.commands if c[0] == "iscsiadm" and c[-1] in ("--login", "--logout")] == [
        "--login", "--login", "--logout", "--logout"]  # fmt: skip
    assert not (env / "iscsi" / "nodes" / IQN).exists()


def test_bad_input_changes_nothing(env):
    bad = params(env)
    bad["targets"][0]["chap_password"] = "short"
    module = SanModule(bad, env)
    module.check_mode = False
    with pytest.raises(StorageError, match="fix chap_password"):
        run(module)
    assert module.commands == [] and not (env / "iscsi" / "nodes").exists() and not (env / "multipath.conf").exists()


def test_heartbeat_refusal_before_anything(env):
    module = SanModule(params(env, replacement_timeout=120, heartbeat_threshold=31), env)
    module.check_mode = False
    with pytest.raises(StorageError, match="135 s.*60 s.*ocfs2_cluster_heartbeat_threshold"):
        run(module)
    assert module.commands == []


def test_undeclared_portal_is_never_logged_in_and_its_record_goes(env):
    make_session(env / "sys", 1, "10.251.0.20", "sdb")
    make_session(env / "sys", 2, "10.251.1.20", "sdc")
    make_map(env / "sys", "dm-0", WWID, ["sdb", "sdc"])
    for address in ("10.251.0.20", "10.251.1.20", "10.251.2.20"):
        write(env / "iscsi" / "nodes" / IQN / f"{address},3260",
              _iscsi.render_record(fixture("node_record_static.txt"), _iscsi.record_settings(
                  {"replacement_timeout": 15, "noop_out_interval": 5, "noop_out_timeout": 5, "login_timeout": 15},
                  "flexvdi", SECRET)))  # fmt: skip
    for f in (env / "iscsi" / "nodes" / IQN).iterdir():
        f.chmod(0o600)
    module = SanModule(params(env), env)
    result = run(module)
    assert result["actions"][-2:] == [
        f"delete the node record of {IQN} at 10.251.2.20:3260 (no longer declared)",
        f"update {env / 'storage.json'}",
    ] or any("10.251.2.20" in a and "delete" in a for a in result["actions"])
    assert not any("log in" in a for a in result["actions"])


def test_absent_refused_while_a_volume_is_registered_on_the_map(env, monkeypatch):
    make_session(env / "sys", 1, "10.251.0.20", "sdb")
    make_map(env / "sys", "dm-0", WWID, ["sdb"])
    dev = env / "dev-dm-0"
    dev.write_text("")
    monkeypatch.setattr(_san, "_devices_of", lambda wwid, sysfs, m, disks: [str(dev)])
    (env / "storage.json").write_text(json.dumps({
        "schema_version": 1, "image_storages": {"S": {"hosts": ["node1"], "volumes": {
            "SAN1": {"type": "ocfs2", "src": str(dev), "kind": "block"}}}},
        "media_storages": {}, "direct_storages": {}}))  # fmt: skip
    p = params(env)
    p["targets"][0]["state"] = "absent"
    with pytest.raises(StorageError) as err:
        run(SanModule(p, env))
    assert "volume SAN1 of image storage S" in err.value.msg and "Nothing was logged out" in err.value.msg


def test_absent_logs_out_one_at_a_time_and_deletes_records(env):
    make_session(env / "sys", 1, "10.251.0.20", "sdb")
    make_session(env / "sys", 2, "10.251.1.20", "sdc")
    make_map(env / "sys", "dm-0", WWID, ["sdb", "sdc"])
    write(env / "iscsi" / "nodes" / IQN / "10.251.0.20,3260,1" / "default", fixture("node_record_static.txt"))
    p = params(env)
    p["targets"][0]["state"] = "absent"
    module = SanModule(p, env)
    module.check_mode = False
    result = run(module)
    steps = [c for c in module.commands if c[0] in ("multipath", "iscsiadm")]
    assert steps[0] == ["multipath", "-f", WWID]
    assert [c[-1] for c in steps[1:]] == ["--logout", "--logout"]
    assert not (env / "iscsi" / "nodes" / IQN).exists()
    assert result["changed"]


def test_generated_initiator_name_when_missing(env):
    os.unlink(env / "iscsi" / "initiatorname.iscsi")
    module = SanModule(params(env, targets=[]), env)
    result = run(module)
    assert result["initiator_name"] == "(generated)"
    assert any("generate this host's own initiator name" in a for a in result["actions"])


def test_initiator_name_change_refused_under_sessions(env):
    make_session(env / "sys", 1, "10.251.0.20", "sdb")
    module = SanModule(params(env, targets=[], initiator_name="iqn.2026-12.lab.flexvdi:node1"), env)
    with pytest.raises(StorageError, match="while it has iSCSI sessions"):
        run(module)


def test_sessions_from_sysfs(env):
    make_session(env / "sys", 3, "10.251.1.20", "sdc", state="FAILED", disk_state="transport-offline", tmo=120)
    (s,) = _iscsi.sessions(str(env / "sys"))
    assert (s["sid"], s["address"], s["port"], s["state"], s["recovery_tmo"], s["ping_tmo"]) == (
        3, "10.251.1.20", 3260, "FAILED", 120, 5)  # fmt: skip
    assert s["disks"][0]["name"] == "sdc" and s["disks"][0]["state"] == "transport-offline"


def test_maps_from_sysfs_and_path_holder(env):
    make_session(env / "sys", 1, "10.251.0.20", "sdb")
    make_session(env / "sys", 2, "10.251.1.20", "sdc", disk_state="transport-offline")
    make_map(env / "sys", "dm-0", WWID, ["sdb", "sdc"])
    maps = _multipath.maps(str(env / "sys"))
    assert maps[WWID]["active"] == 1 and len(maps[WWID]["paths"]) == 2
    assert _multipath.holder_map("/dev/sdc", str(env / "sys")) == WWID
    assert _multipath.holder_map("/dev/sdz", str(env / "sys")) is None
    assert _multipath.map_wwid("/dev/dm-0", str(env / "sys")) == WWID


def test_multipathd_started_before_logins_when_not_running(env):
    os.unlink(env / "multipathd.pid")
    module = SanModule(params(env), env)
    module.check_mode = False
    make_map(env / "sys", "dm-0", WWID, ["sdb", "sdc"])
    run(module)
    start = module.commands.index(["systemctl", "start", "multipathd.service"])
    first_login = next(i for i, c in enumerate(module.commands) if c[-1] == "--login")
    assert start < first_login


# --- the controller side ------------------------------------------------------------------------------


def test_duplicate_initiators_name_both_hosts_and_the_fix():
    from ansible_collections.flexvdi.storage.plugins.filter.san_targets import san_duplicate_initiators

    hostvars = {
        "node1": {"__san_client_probe": {"initiator_name": "iqn.1993-08.org.debian:01:abc"}},
        "node2": {"__san_client_probe": {"initiator_name": "iqn.1993-08.org.debian:01:abc"}},
        "node3": {"__san_client_probe": {"initiator_name": "(generated)"}},
        "node4": {"__san_client_probe": {"skipped": True}},
    }
    msg = san_duplicate_initiators(["node1", "node2", "node3", "node4"], hostvars)
    assert "node1 and node2 share iqn.1993-08.org.debian:01:abc" in msg
    assert "san_client_initiator_name" in msg and "Nothing was logged in" in msg
    hostvars["node2"]["__san_client_probe"]["initiator_name"] = "iqn.1993-08.org.debian:01:def"
    assert san_duplicate_initiators(["node1", "node2", "node3"], hostvars) == ""


def test_controller_picks_a_hosts_targets_and_checks_them():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.flexvdi.storage.plugins.filter.san_targets import san_targets

    t1 = {"name": "a", "iqn": IQN, "portals": [{"address": "san.example"}], "hosts": ["node1", "node2"], "luns": [WWID]}
    t2 = {"name": "b", "iqn": IQN + "2", "portals": [{"address": "10.0.0.1"}], "storage": "S"}
    storages = [{"name": "S", "hosts": ["node2"]}]
    inventory = ["node1", "node2"]
    assert [t["name"] for t in san_targets([t1, t2], "node2", storages, inventory)] == ["a", "b"]
    assert [t["name"] for t in san_targets([t1, t2], "node1", storages, inventory)] == ["a"]
    with pytest.raises(AnsibleFilterError, match="storage T is not an image storage"):
        san_targets([dict(t2, storage="T")], "node1", storages, inventory)
    with pytest.raises(AnsibleFilterError, match="hosts node9 not in the inventory"):
        san_targets([dict(t1, hosts=["node9"])], "node1", storages, inventory)
    with pytest.raises(AnsibleFilterError, match="hosts is missing"):
        san_targets([{k: v for k, v in t1.items() if k != "hosts"}], "node1", storages, inventory)
    with pytest.raises(AnsibleFilterError, match="Nothing was changed on any host"):
        san_targets([dict(t1, iqn="*")], "node1", storages, inventory)
    slow = {"replacement_timeout": 120, "noop_out_interval": 5, "noop_out_timeout": 5, "polling_interval": 5}
    with pytest.raises(AnsibleFilterError, match="135 s.*60 s.*ocfs2_cluster_heartbeat_threshold"):
        san_targets([t1], "node1", storages, inventory, heartbeat_threshold=31, timeouts=slow)
    assert san_targets([t1], "node1", storages, inventory, heartbeat_threshold=70, timeouts=slow)


# --- OCFS2, external and direct storages on a SAN ------------------------------------------------------


def test_one_path_of_a_map_is_refused_naming_the_map(env, monkeypatch):
    from ansible_collections.flexvdi.storage.plugins.module_utils import _blockdev

    sysfs = env / "sys"
    make_session(sysfs, 1, "10.251.0.20", "sdb")
    make_session(sysfs, 2, "10.251.1.20", "sdc")
    make_map(sysfs, "dm-0", WWID, ["sdb", "sdc"])
    monkeypatch.setattr(_multipath, "SYSFS", str(sysfs))
    monkeypatch.setattr(_blockdev, "disk_dir", lambda kernel: str(sysfs / "block" / os.path.basename(kernel)))
    with pytest.raises(StorageError) as err:
        _blockdev.refuse_multipath_path("/dev/disk/by-id/wwn-0x6001405d2b5c4e1f", "/dev/sdc", "OCFS2 volume SAN1")
    msg = err.value.msg
    assert f"one path of LUN {WWID}" in msg and f"set device to /dev/disk/by-id/dm-uuid-mpath-{WWID}" in msg
    # the map itself, and a disk no map holds, pass
    _blockdev.refuse_multipath_path("/dev/disk/by-id/dm-uuid-mpath-" + WWID, "/dev/dm-0", "v")
    (sysfs / "block" / "sdz").mkdir()
    _blockdev.refuse_multipath_path("/dev/sdz", "/dev/sdz", "v")


def test_live_failover_check_on_a_map(env, monkeypatch):
    from ansible_collections.flexvdi.storage.plugins.module_utils import _ocfs2

    sysfs, configfs = env / "sys", env / "configfs"
    make_session(sysfs, 1, "10.251.0.20", "sdb", tmo=120)
    make_session(sysfs, 2, "10.251.1.20", "sdc")
    make_map(sysfs, "dm-0", WWID, ["sdb", "sdc"])
    write(configfs / "cluster" / "flexvdi" / "heartbeat" / "dead_threshold", "31\n")
    monkeypatch.setattr(_multipath, "CONF", str(env / "multipath.conf"))
    write(env / "multipath.conf", _multipath.render_conf([WWID], {"polling_interval": 5, "no_path_retry": "3"}))
    with pytest.raises(StorageError) as err:
        _ocfs2.check_failover(None, "/dev/dm-0", "flexvdi", "OCFS2 volume SAN1", str(sysfs), str(configfs))
    msg = err.value.msg
    assert "135 s" in msg and "60 s" in msg and "Nothing was mounted" in msg and "at least 70" in msg
    (sysfs / "class" / "iscsi_session" / "session1" / "recovery_tmo").write_text("15\n")
    _ocfs2.check_failover(None, "/dev/dm-0", "flexvdi", "v", str(sysfs), str(configfs))
    # not a map, or no o2cb: nothing to say
    _ocfs2.check_failover(None, "/dev/sdb", "flexvdi", "v", str(sysfs), str(configfs))
    _ocfs2.check_failover(None, "/dev/dm-0", "other", "v", str(sysfs), str(configfs))


# --- storage_info and the report ------------------------------------------------------------------------


def test_report_flags_redundancy_lost_and_is_clean_when_paths_are_back(env, monkeypatch):
    from ansible_collections.flexvdi.storage.plugins.module_utils import _info
    from ansible_collections.flexvdi.storage.plugins.plugin_utils import _report

    sysfs = env / "sys"
    make_session(sysfs, 1, "10.251.0.20", "sdb")
    make_session(sysfs, 2, "10.251.1.20", "sdc", state="FAILED", disk_state="transport-offline")
    make_map(sysfs, "dm-0", WWID, ["sdb", "sdc"])
    registered = {
        "array1": {"iqn": IQN, "portals": ["10.251.0.20:3260", "10.251.1.20:3260"], "luns": {WWID: {"paths": 2}}}
    }
    degraded = _info.san_status(registered, str(sysfs))
    assert degraded[0]["luns"][0]["active"] == 1 and degraded[0]["luns"][0]["paths"] == 2

    def info(san):
        return {"image_storages": [], "media_storages": [], "direct_storages": [], "san_targets": san}

    report = _report.merge({"node1": info(degraded), "node2": info(_info.san_status(registered, str(env / "none")))})
    problems = " | ".join(report["problems"])
    assert (
        f"LUN {WWID} of SAN target array1 on host node1: 1 of 2 paths active, redundancy lost (sdc transport-offline)"
        in problems
    )
    assert f"LUN {WWID} of SAN target array1 has no multipath map on host node2" in problems
    text = _report.text(report)
    assert f"! {WWID} of array1 (/dev/disk/by-id/dm-uuid-mpath-{WWID}): node1 1/2, node2 0/0" in text
    assert "redundancy lost" in _report.html(report)
    (sysfs / "block" / "sdc" / "device" / "state").write_text("running\n")
    healthy = _info.san_status(registered, str(sysfs))
    report = _report.merge({"node1": info(healthy)})
    assert report["problems"] == [] and f"  {WWID} of array1" in _report.text(report)


# --- real output captured in the lab (tests/unit/fixtures/san/<state>/, README there) -------------------

LAB_IQN = "iqn.2012-01.com.flexvdi:lab-san"
LAB_LUNS = ("36001405f1e0d0c010004000800000000", "36001405f1e0d0c020004000800000000")
LAB_PORTALS = [("10.251.0.20", 3260, 1), ("10.251.0.21", 3260, 1)]


@pytest.mark.parametrize(
    ("state", "host", "active"),
    [("both-up", "node1", 2), ("both-up", "node2", 2), ("B-path-failed", "node1", 1), ("B-path-failed", "node2", 1),
     ("B-restored", "node1", 2), ("B-restored", "node2", 2), ("after-boot", "node2", 2)],
)  # fmt: skip
def test_lab_maps_json_and_multipath_ll_agree(state, host, active):
    js = _multipath.parse_maps_json(fixture(f"{state}/{host}.multipathd-show-maps-json.json"))
    ll = _multipath.parse_multipath_ll(fixture(f"{state}/{host}.multipath-ll.txt"))
    assert sorted(js) == sorted(ll) == list(LAB_LUNS)
    for wwid in LAB_LUNS:
        # names are the WWIDs (user_friendly_names no); 2 paths, one per portal, whatever their state
        assert js[wwid]["name"] == ll[wwid]["name"] == wwid
        assert js[wwid]["total"] == ll[wwid]["total"] == 2
        assert js[wwid]["active"] == ll[wwid]["active"] == active
        assert [p["name"] for p in js[wwid]["paths"]] == [p["name"] for p in ll[wwid]["paths"]]
        # multipathd's own "paths" counts the active paths only (measured): the total is the path entries
        raw = next(m for m in json.loads(fixture(f"{state}/{host}.multipathd-show-maps-json.json"))["maps"]
                   if m["uuid"] == wwid)  # fmt: skip
        assert raw["paths"] == active


def test_lab_failed_path_states():
    # columns padded ("ready  running"): the parser once dropped every path line with padding
    ll = _multipath.parse_multipath_ll(fixture("B-path-failed/node1.multipath-ll.txt"))
    states = {p["name"]: (p["dm_st"], p["chk_st"], p["dev_st"]) for p in ll[LAB_LUNS[0]]["paths"]}
    assert states == {"sda": ("active", "ready", "running"), "sdc": ("failed", "faulty", "running")}
    # seen in the lab while the path was being failed (verify.yml's lost portal)
    text = "36001405f1e0d0c010004000800000000 dm-0 LIO-ORG,IBLOCK\n  |- 3:0:0:0 sdc 8:32 failed i/o pending running\n"
    path = _multipath.parse_multipath_ll(text)[LAB_LUNS[0]]["paths"][0]
    assert (path["dm_st"], path["chk_st"], path["dev_st"]) == ("failed", "i/o pending", "running")


@pytest.mark.parametrize(
    ("state", "host", "states"),
    [("both-up", "node1", ["LOGGED_IN", "LOGGED_IN"]), ("B-path-failed", "node1", ["LOGGED_IN", "FREE"]),
     ("B-restored", "node2", ["LOGGED_IN", "LOGGED_IN"]), ("after-boot", "node2", ["LOGGED_IN", "LOGGED_IN"])],
)  # fmt: skip
def test_lab_session_p3(state, host, states):
    # ordered by portal (after a boot, the portal logged in first is not always .20)
    sessions = sorted(_iscsi.parse_session_p3(fixture(f"{state}/{host}.iscsiadm-session-P3.txt")),
                      key=lambda s: s["address"])  # fmt: skip
    assert [(s["target"], s["address"], s["port"], s["tpgt"]) for s in sessions] == [(LAB_IQN, *p) for p in LAB_PORTALS]
    assert [s["state"] for s in sessions] == states
    # multipathd wrote its fast_io_fail_tmo (Debian's 5) over the record's replacement_timeout (120)
    assert {s["recovery_tmo"] for s in sessions} == {5}
    assert {s["username"] for s in sessions} == {"flexvdi-lab"}
    assert all(len(s["disks"]) == 2 for s in sessions)
    assert all("password" not in s for s in sessions)


def test_lab_node_list():
    assert _iscsi.parse_node_list(fixture("both-up/node1.iscsiadm-node.txt")) == [
        {"address": a, "port": p, "tpgt": t, "target": LAB_IQN} for a, p, t in LAB_PORTALS
    ]


def test_lab_node_record_after_discovery_gets_chap_and_boot_login():
    text = fixture("both-up/node1.node-record-after-discovery.txt")
    assert _iscsi.parse_record(text)["node.startup"] == "manual"
    wanted = _iscsi.record_settings(
        {"replacement_timeout": 5, "noop_out_interval": 5, "noop_out_timeout": 5, "login_timeout": 15},
        "flexvdi-lab",
        SECRET,
    )
    again = _iscsi.parse_record(_iscsi.render_record(text, wanted))
    assert _iscsi.record_differences(again, wanted) == []
    assert again["node.startup"] == "automatic" and again["node.session.auth.password"] == SECRET


def test_multipath_conf_overrides_what_the_device_table_sets():
    # LIO-ORG's built-in device entry has no_path_retry 12, which wins over defaults; overrides win over both.
    # fast_io_fail_tmo is what multipathd writes into each iSCSI session's recovery_tmo.
    text = _multipath.render_conf(
        list(LAB_LUNS), {"polling_interval": 5, "no_path_retry": "3", "fast_io_fail_tmo": 5, "find_multipaths": "off"}
    )
    overrides = text.split("overrides {")[1].split("}")[0]
    assert "no_path_retry 3" in overrides and "fast_io_fail_tmo 5" in overrides
    assert "no_path_retry" not in text.split("overrides {")[0]
    assert _multipath.conf_settings(text)["fast_io_fail_tmo"] == "5"
