"""Talking to Gluster: the parser of real `gluster --xml` output, the CLI's retries, group files, command lines.

The fixtures in fixtures/gluster/ were captured from glusterd 10.3 (three peers in network
namespaces, as tests/integration/test_gluster_volume.py runs them): a replica 3 arbiter 1 volume
with the virt group set, its status detail with every brick online and with node2's brick
process killed, and heal info (summary and full) before and after files were written while
that brick was down. Brick paths were rewritten to /srv/gluster/gv.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils import _gluster_cli
from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError

FIXTURES = Path(__file__).parent / "fixtures" / "gluster"
BRICK = "/srv/gluster/gv"
N1, N2, N3 = "10.252.0.11", "10.252.0.12", "10.252.0.13"


def load(name):
    return _gluster_cli.parse((FIXTURES / f"{name}.xml").read_text())


# --- parsing ---------------------------------------------------------------------------------


def test_volume_info_of_a_started_arbitrated_volume():
    (volume,) = _gluster_cli.volumes(load("volume_info"))
    assert (volume["name"], volume["status"], volume["started"], volume["type"]) == ("gv", "Started", True, "Replicate")
    assert (volume["replica"], volume["arbiter"], volume["transport"]) == (3, 1, "tcp")
    assert [(b["address"], b["path"], b["arbiter"]) for b in volume["bricks"]] == [
        (N1, BRICK, False),
        (N2, BRICK, False),
        (N3, BRICK, True),
    ]
    assert volume["bricks"][0]["name"] == f"{N1}:{BRICK}"
    assert volume["options"]["storage.owner-uid"] == "64055"
    assert volume["options"]["features.shard"] == "on"
    assert len(volume["options"]) == 30


def test_volume_info_of_a_volume_just_created():
    (volume,) = _gluster_cli.volumes(load("volume_info_created"))
    assert (volume["status"], volume["started"]) == ("Created", False)
    assert "storage.owner-uid" not in volume["options"]


def test_a_missing_volume_is_an_operation_error_not_a_volume():
    root = load("volume_info_missing")
    assert _gluster_cli.op_status(root) == (-1, _gluster_cli.MISSING_VOLUME, "Volume does not exist")
    assert _gluster_cli.volumes(root) == []


def test_pool_list_has_this_host_as_localhost():
    pool = _gluster_cli.peers(load("pool_list"))
    assert [(p["hostname"], p["connected"], p["in_cluster"], p["self"]) for p in pool] == [
        (N2, True, True, False),
        (N3, True, True, False),
        ("localhost", True, False, True),
    ]
    assert _gluster_cli.peers(load("peer_status")) == pool[:2]


@pytest.mark.parametrize(
    ("fixture", "online"),
    [("status_detail", [True, True, True]), ("status_detail_offline", [True, False, True])],
)
def test_status_detail_tells_which_brick_is_online(fixture, online):
    bricks = _gluster_cli.brick_status(load(fixture))
    assert [(b["address"], b["path"]) for b in bricks] == [(N1, BRICK), (N2, BRICK), (N3, BRICK)]
    assert [b["online"] for b in bricks] == online
    assert bricks[0]["size"] > bricks[0]["free"] > 0


@pytest.mark.parametrize(
    ("fixture", "pending", "connected", "total"),
    [
        ("heal_summary", [0, 0, 0], [True, True, True], 0),
        ("heal_summary_pending", [8, None, 8], [True, False, True], 16),
        ("heal_info", [0, 0, 0], [True, True, True], 0),
        ("heal_info_pending", [5, None, 5], [True, False, True], 10),
    ],
)
def test_heal_counts_pending_entries_of_connected_bricks(fixture, pending, connected, total):
    bricks = _gluster_cli.heal(load(fixture))
    assert [b["pending"] for b in bricks] == pending
    assert [b["connected"] for b in bricks] == connected
    assert _gluster_cli.pending_total(bricks) == total


def test_heal_of_no_answering_brick_is_unknown():
    assert _gluster_cli.pending_total([{"pending": None}, {"pending": None}]) is None


# glusterd's answer while another host's operation holds the volume's lock (glusterd 10.3's words)
BUSY = (
    "<cliOutput><opRet>-1</opRet><opErrno>30802</opErrno><opErrstr>Another transaction is in progress for gv. "
    "Please try again after some time.</opErrstr></cliOutput>"
)


class Scripted:
    """A runner whose `gluster` answers come from a list, one per call."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = 0

    def run(self, argv, what, check=False, timeout=None):
        self.calls += 1
        return 0, self.answers.pop(0), ""


@pytest.fixture
def no_sleep(monkeypatch):
    """time.sleep records its delay and moves a fake clock on, so retries are bounded by time."""
    slept = []
    clock = [1000.0]

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(_gluster_cli.time, "sleep", sleep)
    monkeypatch.setattr(_gluster_cli.time, "monotonic", lambda: clock[0])
    return slept


def test_an_operation_refused_for_the_lock_is_asked_again(no_sleep):
    runner = Scripted([BUSY, BUSY, (FIXTURES / "status_detail.xml").read_text()])
    assert _gluster_cli.bricks_online(runner, "gv", "V") == {(N1, BRICK): True, (N2, BRICK): True, (N3, BRICK): True}
    assert runner.calls == 3 and no_sleep == [0.5, 1.0]


def test_the_lock_held_past_the_retry_time_is_the_answer(no_sleep):
    runner = Scripted([BUSY] * 50)
    with pytest.raises(StorageError, match="Another transaction is in progress"):
        _gluster_cli.cli(runner, ["volume", "set", "gv", "a.b", "c"], "V", busy_retry=3)
    assert runner.calls == 3 and no_sleep == [0.5, 1.0]


def test_a_failure_glusterd_logged_says_where_its_log_is(no_sleep):
    # glusterd 10.3's words when a peer's commit failed (a CI run of the integration tests)
    failed = (
        "<cliOutput><opRet>-1</opRet><opErrno>0</opErrno><opErrstr>Commit failed on 10.252.0.13. Please check log "
        "file for details.</opErrstr></cliOutput>"
    )
    with pytest.raises(StorageError) as error:
        _gluster_cli.cli(Scripted([failed]), ["volume", "add-brick", "gv", "replica", "3", "n4:/b"], "V")
    assert error.value.msg == (
        "V: gluster volume add-brick gv replica 3 n4:/b failed: Commit failed on 10.252.0.13. Please check log file "
        "for details. (on the host named there: /var/log/glusterfs/glusterd.log)"
    )


def test_other_failures_are_not_asked_again(no_sleep):
    missing = (FIXTURES / "volume_info_missing.xml").read_text()
    runner = Scripted([missing, missing])
    assert _gluster_cli.volume_info(runner, "gv", "V") is None
    assert runner.calls == 1 and no_sleep == []


def test_bricks_whose_state_glusterd_did_not_give_are_unknown_not_offline(no_sleep):
    runner = Scripted([BUSY] * 100)
    assert _gluster_cli.bricks_online(runner, "gv", "V") is None
    assert sum(no_sleep) <= _gluster_cli.BUSY_RETRY_SECONDS and runner.calls > 10


def test_after_start_the_bricks_are_waited_for_until_online(no_sleep):
    offline = (FIXTURES / "status_detail_offline.xml").read_text()
    online = (FIXTURES / "status_detail.xml").read_text()
    runner = Scripted([offline, offline, online])
    assert all(_gluster_cli.wait_bricks_online(runner, "gv", "V").values())
    assert runner.calls == 3


@pytest.mark.parametrize(
    "text",
    ["Connection failed. Please check if gluster daemon is operational.\n", "", "<other/>"],
)
def test_what_is_not_gluster_xml_is_a_clear_error(text):
    with pytest.raises(StorageError, match="gluster gave"):
        _gluster_cli.parse(text, "Gluster volume gv")


@pytest.mark.parametrize(
    ("name", "split"),
    [
        (f"{N1}:{BRICK}", (N1, BRICK)),
        ("node1.example:/b", ("node1.example", "/b")),
        ("[fd00::1]:/b", ("fd00::1", "/b")),
    ],
)
def test_split_brick(name, split):
    assert _gluster_cli.split_brick(name) == split


# --- option groups ---------------------------------------------------------------------------


def test_the_installed_virt_group_is_read():
    path = Path(_gluster_cli.GROUPS_DIR) / "virt"
    if not path.is_file():
        pytest.skip("glusterfs-server is not installed")
    group = _gluster_cli.read_group("virt")
    assert group["features.shard"] == "on" and group["cluster.quorum-type"] == "auto"


def test_a_missing_group_names_the_package_and_the_option(tmp_path):
    with pytest.raises(StorageError, match="install glusterfs-server .* or set virt_profile: false"):
        _gluster_cli.read_group("virt", directory=str(tmp_path))


# --- commands --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arbiter", "force", "argv"),
    [
        ("c", False, ["volume", "create", "gv", "replica", "3", "arbiter", "1", "transport", "tcp", "a:/b", "c:/b"]),
        (None, True, ["volume", "create", "gv", "replica", "2", "transport", "tcp", "a:/b", "c:/b", "force"]),
    ],
)
def test_create_argv(arbiter, force, argv):
    assert _gluster_cli.create_argv("gv", 2, arbiter, "tcp", [("a", "/b"), ("c", "/b")], force) == argv


def test_every_option_is_set_in_one_call():
    argv = _gluster_cli.set_argv("gv", [("network.remote-dio", "disable"), ("storage.owner-uid", "64055")])
    assert argv == ["volume", "set", "gv", "network.remote-dio", "disable", "storage.owner-uid", "64055"]
