"""Gluster volumes: options, layout and brick checks, and the plan of a volume (check mode).

gluster answers from the fixtures in fixtures/gluster/, captured from glusterd 10.3 (see
test_gluster_cli.py, which tests their parser).
"""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import _fakes
import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils import _gluster, _gluster_cli
from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError

FIXTURES = Path(__file__).parent / "fixtures" / "gluster"
BRICK = "/srv/gluster/gv"
N1, N2, N3 = "10.252.0.11", "10.252.0.12", "10.252.0.13"


def load(name):
    return _gluster_cli.parse((FIXTURES / f"{name}.xml").read_text())


# --- options ---------------------------------------------------------------------------------

QEMU = SimpleNamespace(uid=64055, gid=993)


def test_virt_profile_is_the_group_file_plus_the_qemu_ids_and_user_options_win():
    group = _gluster_cli.parse_group("# comment\nperformance.quick-read=off\nfeatures.shard=on\n\n")
    wanted = _gluster.desired_options({"features.shard": "off"}, True, QEMU, group=group)
    assert wanted == {
        "performance.quick-read": "off",
        "features.shard": "off",
        "storage.owner-uid": "64055",
        "storage.owner-gid": "993",
    }
    assert _gluster.desired_options({"a.b": "1"}, False, None) == {"a.b": "1"}


def test_only_options_that_differ_are_set():
    (volume,) = _gluster_cli.volumes(load("volume_info"))
    current = volume["options"]
    same = {k: current[k] for k in ("features.shard", "cluster.eager-lock", "storage.owner-uid")}
    assert _gluster.diff_options(current, same) == []
    changes = _gluster.diff_options(
        current,
        {"features.shard": "on", "storage.owner-gid": "993", "network.ping-timeout": "30", "cluster.eager-lock": "on"},
    )
    # enable and on are the same boolean for gluster; an unset option is a change from None.
    assert changes == [("storage.owner-gid", None, "993"), ("network.ping-timeout", "20", "30")]


@pytest.mark.parametrize(
    ("options", "wanted"),
    [
        ({"performance.read-ahead": False}, "off"),
        ({"performance.read-ahead": True}, "on"),
        ({"network.ping-timeout": 30}, "30"),
    ],
)
def test_yaml_values_become_gluster_values(options, wanted):
    assert list(_gluster.check_options(options, "V").values()) == [wanted]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"read-ahead": "off"}, "options key 'read-ahead' is not a full Gluster option name"),
        ({"a.b": None}, "options a.b must be a single value"),
        ({"a.b": ["x"]}, "options a.b must be a single value"),
        ({"a.b": "x\ny"}, "options a.b must be a single value"),
    ],
)
def test_bad_options_name_the_option(options, message):
    with pytest.raises(StorageError, match="fix options") as caught:
        _gluster.check_options(options, "V")
    assert message in caught.value.msg


# --- layout ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hosts", "arbiter", "replica", "force", "result"),
    [
        (["a", "b"], "c", None, False, (["a", "b"], 2)),
        (["a", "b", "c"], None, None, False, (["a", "b", "c"], 3)),
        (["a", "b", "c"], "c", None, False, (["a", "b"], 2)),
        (["a", "b"], None, None, True, (["a", "b"], 2)),
        (["a"], None, None, True, "at least two hosts"),
        (["a", "b"], None, None, False, "replica 2 without an arbiter is refused"),
        (["a", "b", "c"], None, 2, False, "replica 2 differs from the 3 data hosts"),
        (["a", "b", "c"], "d", None, False, "arbiter d is for two data hosts"),
    ],
)
def test_layout(hosts, arbiter, replica, force, result):
    if isinstance(result, str):
        with pytest.raises(StorageError) as caught:
            _gluster.layout(hosts, arbiter, replica, force, "V")
        assert result in caught.value.msg
        if "arbiter is refused" in result:
            assert "split-brain" in caught.value.msg and "force: true" in caught.value.msg
    else:
        assert _gluster.layout(hosts, arbiter, replica, force, "V") == result


def test_bricks_overlapping_another_volume_are_refused():
    (other,) = _gluster_cli.volumes(load("volume_info"))
    _gluster.check_against_others([other], "gv", [(N1, BRICK)], "V")  # the same volume: its own bricks
    for path in (BRICK, BRICK + "/inner", "/srv/gluster"):
        with pytest.raises(StorageError, match="overlaps brick 10.252.0.11:/srv/gluster/gv of Gluster volume gv"):
            _gluster.check_against_others([other], "new", [(N1, path)], "V")
    _gluster.check_against_others([other], "new", [(N1, "/srv/gluster/gv2"), ("10.9.9.9", BRICK)], "V")


def test_peers_not_in_the_pool_or_disconnected_are_named():
    pool = _gluster_cli.peers(load("pool_list"))
    names = {N1: "node1", N2: "node2", N3: "node3", "10.252.0.14": "node4"}
    _gluster.check_peers(pool, [N1, N2, N3], N1, "V", names)
    with pytest.raises(StorageError, match=r"peer node4 \(10.252.0.14\) is not in the Gluster trusted pool"):
        _gluster.check_peers(pool, [N1, "10.252.0.14"], N1, "V", names)
    pool[1]["connected"] = False
    with pytest.raises(StorageError, match=r"peer node3 \(10.252.0.13\) is unreachable"):
        _gluster.check_peers(pool, [N1, N2, N3], N1, "V", names)


def test_a_peer_known_by_its_host_name_matches_the_address_it_resolves_to():
    # glusterd names a peer from the connection it came on (node2 knows node1, which probed it
    # by address, as "node1" when /etc/hosts says so): the name that resolves to the address counts.
    pool = _gluster_cli.peers(load("pool_list"))
    peer = next(p for p in pool if not p["self"])
    name = socket.gethostname()
    peer["hostname"], peer["hostnames"] = name, [name]
    address = sorted(_gluster.resolve(name))[0]
    _gluster.check_peers(pool, [address], N1, "V", {})


@pytest.mark.parametrize("name", ["gv", "SSD_1", "a-b"])
def test_volume_names_gluster_accepts(name):
    assert _gluster.check_volume_name(name, "V") == name


@pytest.mark.parametrize("name", ["a.b", "x" * 65])
def test_volume_names_gluster_refuses(name):
    with pytest.raises(StorageError, match="fix name"):
        _gluster.check_volume_name(name, "V")


# --- the plan of an existing volume (check mode, gluster answering from the fixtures) ----------


class FakeModule(_fakes.FakeModule):
    """`gluster --xml` answered by its subcommand words (``volume info``...), other commands by name."""

    def answer(self, argv):
        key = " ".join(argv[3:5]) if argv[0] == "gluster" else argv[0]
        return 0, self.answers.get(key, ""), ""


def _without_arbiter(text):
    return text.replace("<isArbiter>1</isArbiter>", "<isArbiter>0</isArbiter>").replace(
        "<arbiterCount>1</arbiterCount>", "<arbiterCount>0</arbiterCount>"
    )


def _four_bricks(text):
    """The three data bricks of the fixture (arbiter made a data brick) plus one of 10.252.0.14."""
    extra = f'<brick uuid="u4">10.252.0.14:{BRICK}<name>10.252.0.14:{BRICK}</name><hostUuid>u4</hostUuid><isArbiter>0</isArbiter></brick>'
    text = _without_arbiter(text).replace("</bricks>", extra + "</bricks>", 1)
    return text.replace("<replicaCount>3</replicaCount>", "<replicaCount>4</replicaCount>")


def _two_bricks(text):
    start = text.index('<brick uuid="7cff03a7')
    end = text.index("</brick>", start) + len("</brick>")
    return _without_arbiter(text[:start] + text[end:]).replace(
        "<replicaCount>3</replicaCount>", "<replicaCount>2</replicaCount>"
    )


# Gluster 10.3's groups/virt, so the plan does not depend on glusterfs-server being installed here.
VIRT_GROUP = """performance.quick-read=off
performance.read-ahead=off
performance.io-cache=off
performance.low-prio-threads=32
network.remote-dio=disable
performance.strict-o-direct=on
cluster.eager-lock=enable
cluster.quorum-type=auto
cluster.server-quorum-type=server
cluster.data-self-heal-algorithm=full
cluster.locking-scheme=granular
cluster.shd-max-threads=8
cluster.shd-wait-qlength=10000
features.shard=on
user.cifs=off
cluster.choose-local=off
client.event-threads=4
server.event-threads=4
performance.client-io-threads=on
network.ping-timeout=20
server.tcp-user-timeout=20
server.keepalive-time=10
server.keepalive-interval=2
server.keepalive-count=5
cluster.lookup-optimize=off
"""


@pytest.fixture
def planned(tmp_path, monkeypatch):
    """planned(info_xml, hosts, heal="heal_summary", **params) -> (result, module): converge in check mode."""
    from ansible_collections.flexvdi.storage.plugins.module_utils import _registry
    from ansible_collections.flexvdi.storage.plugins.module_utils._host import Host
    from ansible_collections.flexvdi.storage.plugins.module_utils._qemu import QemuUser

    (tmp_path / "fstab").write_text("")
    (tmp_path / "groups").mkdir()
    (tmp_path / "groups" / "virt").write_text(VIRT_GROUP)
    monkeypatch.setattr(_gluster_cli, "GROUPS_DIR", str(tmp_path / "groups"))

    def _planned(info, hosts, heal="heal_summary", **extra):
        registry = _registry.Registry(str(tmp_path / "storage.json"))
        data = _registry.empty()
        data["image_storages"]["S"] = {"hosts": list(hosts), "root": str(tmp_path / "S"), "volumes": {}}
        registry.save(data)
        params = {
            "image_storage": "S",
            "name": "gv",
            "brick": BRICK,
            "replica": None,
            "arbiter": None,
            "addresses": {"n1": N1, "n2": N2, "n3": N3},
            "transport": "tcp",
            "options": {},
            "virt_profile": True,
            "mount_point": None,
            "create_timeout": 300,
            "delete_volume": False,
            "state": "present",
            "force": False,
            "registry": str(tmp_path / "storage.json"),
            "fstab": str(tmp_path / "fstab"),
            "qemu_user": None,
            "inventory_hostname": "n1",
        }
        params.update(extra)
        answers = {
            "volume info": info,
            "pool list": (FIXTURES / "pool_list.xml").read_text(),
            "volume heal": (FIXTURES / f"{heal}.xml").read_text(),
        }
        module = FakeModule(params, answers)
        host = Host(module)
        host._mounts = []
        host._qemu = QemuUser("libvirt-qemu", 64055, 994, (994,), "kvm")
        try:
            return _gluster.converge(host), module
        except StorageError as exc:
            return {"failed": True, "msg": exc.msg}, module

    return _planned


def _gluster_calls(module):
    return [c[3:] for c in module.commands if c[0] == "gluster"]


def _writes(module):
    verbs = ("create", "set", "reset", "start", "stop", "delete", "add-brick", "remove-brick")
    return [c for c in _gluster_calls(module) if c[0] == "volume" and c[1] in verbs or c[0] == "peer"]


def _with_auth_allow(text, value):
    option = f"<option><name>auth.allow</name><value>{value}</value></option>"
    return text.replace("<options>", "<options>" + option, 1)


def test_an_existing_volume_gets_only_the_options_that_differ(planned):
    result, module = planned((FIXTURES / "volume_info.xml").read_text(), ["n1", "n2"], arbiter="n3")
    assert not result.get("failed"), result
    # An adopted volume open to every address (glusterd's default) gets the storage's hosts and arbiter.
    assert result["actions"][0] == (
        f"set 2 option(s) of Gluster volume gv: storage.owner-gid=994, auth.allow={N1},{N2},{N3}"
    )
    assert "start Gluster volume gv" not in result["actions"], "it is started"
    assert not _writes(module), "check mode only reads"
    assert any("experimental" in w for w in module.warnings)


def test_other_hosts_leave_the_volume_to_the_first(planned):
    result, _module = planned(
        (FIXTURES / "volume_info.xml").read_text(), ["n1", "n2"], arbiter="n3", inventory_hostname="n2"
    )
    assert not result.get("failed"), result
    assert not any("option" in a for a in result["actions"])
    assert f"mount {N2}:/gv" in " ".join(result["actions"])
    assert f"backup-volfile-servers={N1}:{N3}" in " ".join(result["actions"])


def test_a_host_added_to_the_storage_gets_its_brick_added(planned):
    result, _module = planned(_two_bricks((FIXTURES / "volume_info.xml").read_text()), ["n1", "n2", "n3"])
    assert not result.get("failed"), result
    assert result["actions"][0] == f"add brick(s) {N3}:{BRICK} to Gluster volume gv (replica 3)"


@pytest.mark.parametrize(
    ("force", "heal", "expected"),
    [
        (False, "heal_summary", "set force: true to remove it"),
        (True, "heal_summary_pending", "refused while heal is pending (16 entries)"),
        (True, "heal_summary", f"force: true: remove brick(s) 10.252.0.14:{BRICK} from Gluster volume gv (replica 3"),
    ],
)
def test_a_brick_of_a_host_gone_is_removed_only_with_force_and_no_heal_pending(planned, force, heal, expected):
    info = _four_bricks((FIXTURES / "volume_info.xml").read_text())
    result, module = planned(info, ["n1", "n2", "n3"], heal=heal, force=force)
    if expected.startswith("force: true"):
        assert not result.get("failed"), result
        assert result["actions"][0].startswith(expected)
    else:
        assert result.get("failed") and expected in result["msg"], result
    assert not _writes(module)


def test_an_arbiter_cannot_be_added_or_dropped_by_the_module(planned):
    result, _module = planned(_without_arbiter((FIXTURES / "volume_info.xml").read_text()), ["n1", "n2"], arbiter="n3")
    assert result.get("failed") and "exists without an arbiter brick" in result["msg"]


def test_a_new_volume_is_refused_while_a_peer_is_not_in_the_pool(planned):
    missing = (FIXTURES / "volume_info_none.xml").read_text()
    result, _module = planned(missing, ["n1", "n2"], arbiter="n3", addresses={"n1": N1, "n2": N2, "n3": "10.252.0.99"})
    assert result.get("failed") and "peer n3 (10.252.0.99) is not in the Gluster trusted pool" in result["msg"]
    result, _module = planned(missing, ["n1", "n2"], arbiter="n3")
    assert not result.get("failed"), result
    assert result["actions"][0].startswith(
        f"create Gluster volume gv, replica 3 arbiter 1 (n3 holds metadata only), bricks {N1}:{BRICK} {N2}:{BRICK} {N3}:{BRICK}"
    )
    assert (
        result["actions"][1].startswith("set 27 option(s) of Gluster volume gv: ")
        or "option(s)" in result["actions"][1]
    )
    assert result["actions"][2] == "start Gluster volume gv"


def test_a_loopback_address_is_refused_naming_gluster_cluster_address(planned):
    info = (FIXTURES / "volume_info.xml").read_text()
    result, _module = planned(info, ["n1", "n2"], arbiter="n3", addresses={"n1": N1, "n2": "127.0.0.1", "n3": N3})
    assert result.get("failed") and "host n2's address in the Gluster trusted pool is 127.0.0.1" in result["msg"]
    assert result["msg"].endswith("set gluster_cluster_address of n2 to its address on the storage network")


@pytest.mark.parametrize(
    ("volume", "warned"),
    [
        ({"status": "online", "message": "brick(s) offline on n2", "qemu_writable": True}, True),
        ({"status": "online", "message": "", "qemu_writable": True}, False),
        # converge_volume already warns of a volume the qemu user cannot write
        ({"status": "online", "message": "cannot write", "qemu_writable": False}, False),
    ],
)
def test_a_volume_served_but_not_as_declared_is_a_warning(monkeypatch, tmp_path, volume, warned):
    """node2 powered off: node1's converge changes nothing, and says which brick is offline."""
    monkeypatch.setattr(_gluster, "converge_volume", lambda *args, **kwargs: {"changed": False, "volume": volume})
    params = {"state": "present", "name": "gv", "image_storage": "S", "create_timeout": 0, "options": {}}
    from ansible_collections.flexvdi.storage.plugins.module_utils._host import Host

    module = _fakes.FakeModule(dict(params, registry=str(tmp_path / "r.json")), {})
    _gluster.converge(Host(module))
    notes = [w for w in module.warnings if "experimental" not in w]
    assert notes == (["Gluster volume gv of image storage S: brick(s) offline on n2"] if warned else [])


# --- who may mount it: auth.allow ------------------------------------------------------------


@pytest.mark.parametrize("order", [f"{N1},{N2},{N3}", f"{N3},{N1},{N2}", f"{N2}, {N3}, {N1}"])
def test_auth_allow_of_the_hosts_in_any_order_is_left_alone(planned, order):
    info = _with_auth_allow((FIXTURES / "volume_info.xml").read_text(), order)
    result, _module = planned(info, ["n1", "n2"], arbiter="n3", qemu_user=None)
    assert not result.get("failed"), result
    assert not any("auth.allow" in a for a in result["actions"]), result["actions"]


def test_auth_allow_follows_the_declaration(planned):
    # A host added: its brick is added and it may mount; its address joins auth.allow in the same run.
    info = _with_auth_allow(_two_bricks((FIXTURES / "volume_info.xml").read_text()), f"{N1},{N2}")
    result, _module = planned(info, ["n1", "n2", "n3"])
    assert not result.get("failed"), result
    assert result["actions"][0] == f"add brick(s) {N3}:{BRICK} to Gluster volume gv (replica 3)"
    assert f"auth.allow={N1},{N2},{N3}" in result["actions"][1]
    # A host gone (force): its address leaves auth.allow.
    info = _with_auth_allow(_four_bricks((FIXTURES / "volume_info.xml").read_text()), f"{N1},{N2},{N3},10.252.0.14")
    result, _module = planned(info, ["n1", "n2", "n3"], force=True)
    assert not result.get("failed"), result
    assert f"auth.allow={N1},{N2},{N3}" in result["actions"][1], result["actions"]


def test_a_new_volume_allows_only_the_hosts_and_the_arbiter(planned):
    result, _module = planned((FIXTURES / "volume_info_none.xml").read_text(), ["n1", "n2"], arbiter="n3")
    assert not result.get("failed"), result
    assert result["actions"][1].endswith(f"auth.allow={N1},{N2},{N3}"), result["actions"][1]


def test_a_users_auth_allow_wins_and_is_checked(planned):
    info = (FIXTURES / "volume_info.xml").read_text()
    result, module = planned(info, ["n1", "n2"], arbiter="n3", options={"auth.allow": ["10.252.0.0/24", "10.9.*.*"]})
    assert not result.get("failed"), result
    assert "auth.allow=10.252.0.0/24,10.9.*.*" in result["actions"][0]
    assert not any("open to" in w or "'*'" in w for w in module.warnings)
    result, module = planned(info, ["n1", "n2"], arbiter="n3", options={"auth.allow": "*"})
    assert not result.get("failed"), result
    assert "auth.allow" not in result["actions"][0], "unset is '*' already"
    assert any("options auth.allow is '*'" in w for w in module.warnings)
    for bad, words in (
        ("*,10.0.0.1", "gives '*' (every address) together with 10.0.0.1"),
        ("node1.example", "holds 'node1.example', not an address or a network"),
        ("10.0.0.300", "holds '10.0.0.300'"),
    ):
        result, module = planned(info, ["n1", "n2"], arbiter="n3", options={"auth.allow": bad})
        assert result.get("failed") and words in result["msg"] and "options auth.allow" in result["msg"], result
        assert not _writes(module)


@pytest.mark.parametrize("host", ["n1", "n2"])
def test_a_public_pool_address_is_refused_on_every_host_unless_allowed(planned, host):
    info = (FIXTURES / "volume_info.xml").read_text()
    addresses = {"n1": N1, "n2": N2, "n3": "203.0.113.13"}
    result, module = planned(info, ["n1", "n2"], arbiter="n3", addresses=addresses, inventory_hostname=host)
    assert result.get("failed"), result
    assert "gluster_cluster_address of host n3 is 203.0.113.13, a public address" in result["msg"]
    assert "gluster_cluster_allow_public: true for n3" in result["msg"]
    assert not _writes(module)
    result, _module = planned(
        info, ["n1", "n2"], arbiter="n3", addresses=addresses, inventory_hostname=host, allow_public=["n3"]
    )
    # let through: what stops it now is the fixture's brick of n3 at another address
    assert "public address" not in result.get("msg", "") and "Bricks of an arbitrated volume" in result["msg"]


def test_a_pool_address_given_as_a_name_is_allowed_by_its_ip(planned, monkeypatch):
    monkeypatch.setattr(_gluster, "resolve", lambda name: {"n3.example": {N3}}.get(name, set()))
    info = (FIXTURES / "volume_info.xml").read_text()
    result, _module = planned(info, ["n1", "n2"], arbiter="n3", addresses={"n1": N1, "n2": N2, "n3": "n3.example"})
    # the brick of n3 is named n3.example now: not the fixture's, so the plan wants it changed; only auth.allow here
    assert "does not resolve" not in result.get("msg", "")
    result, _module = planned(info, ["n1", "n2"], arbiter="n3", addresses={"n1": N1, "n2": N2, "n3": "nowhere"})
    assert (
        result.get("failed") and "n3's address in the Gluster trusted pool, nowhere, does not resolve" in result["msg"]
    )


def test_status_shows_who_may_mount(planned):
    assert _gluster.allowed({}) == ["*"]
    assert _gluster.allowed({"auth.allow": f"{N1},{N2}"}) == [N1, N2]
