"""The storage role's volume selection: defaults filled in, only what applies to one host."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.flexvdi.storage.plugins.plugin_utils._role import (
    gluster_probe_plan,
    storage_hosts,
    volumes_for_host,
)

STORAGES = [
    {
        "name": "A",
        "hosts": ["n1", "n2"],
        "volumes": [
            {"name": "keep", "mount_point": "/a/keep", "src": "nas:/x", "opts": None},
            {"name": "gone", "mount_point": "/a/gone", "state": "absent", "force": True},
        ],
    },
    {"name": "B", "hosts": ["n1", "n3"], "volumes": [{"name": "two", "mount_point": "/b", "owner_qemu": True}]},
    {"name": "C", "hosts": ["n1"], "state": "absent", "volumes": [{"name": "old", "mount_point": "/c"}]},
    {"name": "D", "hosts": ["n3"], "volumes": [{"name": "elsewhere", "mount_point": "/d"}]},
    {"name": "E", "hosts": ["n1"]},
    {"name": "F", "state": "absent", "volumes": [{"name": "retired", "mount_point": "/f"}]},
]


def _names(items):
    return [(i["image_storage"], i["name"]) for i in items]


def test_present_on_a_listed_host_with_defaults():
    items = volumes_for_host(STORAGES, "n1")
    assert _names(items) == [("A", "keep"), ("B", "two")]
    assert items[0] == {
        "image_storage": "A",
        "name": "keep",
        "type": "external",
        "mount_point": "/a/keep",
        "src": "nas:/x",
        "fstype": None,
        "opts": None,
        "require_mountpoint": False,
        "owner_qemu": False,
        "shared": True,
        "force": False,
        "state": "present",
    }
    assert items[1]["owner_qemu"] is True


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("n1", [("A", "keep"), ("B", "two")]),
        ("n2", [("A", "keep")]),
        ("n3", [("B", "two"), ("D", "elsewhere")]),
        ("n4", []),
    ],
)
def test_the_host_set_is_the_declarations(host, expected):
    """Whatever part of the inventory a run sees, a host gets the volumes of the storages that list it."""
    assert _names(volumes_for_host(STORAGES, host)) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("n1", [("A", "gone"), ("C", "old"), ("F", "retired")]),
        ("n2", [("A", "gone"), ("F", "retired")]),
        ("n4", [("F", "retired")]),
    ],
)
def test_absent_volumes_and_volumes_of_absent_storages(host, expected):
    """An absent storage without hosts is absent everywhere: its volumes go on every host."""
    items = volumes_for_host(STORAGES, host, "absent")
    assert _names(items) == expected
    assert items[-1]["state"] == "present"  # the volume's own state; its storage is what is absent


def test_absent_volume_keeps_its_force():
    assert volumes_for_host(STORAGES, "n2", "absent")[0]["force"] is True


def test_present_storage_without_hosts_is_refused():
    """Never a default from the play's hosts: --limit would shrink a storage of two hosts to one."""
    storages = [{"name": "NoHosts", "volumes": [{"name": "v", "mount_point": "/v"}]}]
    with pytest.raises(
        ValueError, match=r"image storage NoHosts has no hosts: list every host of the storage in hosts"
    ):
        volumes_for_host(storages, "n1")
    with pytest.raises(ValueError, match="has no hosts"):
        volumes_for_host(storages, "n1", "absent")


def test_nothing_declared():
    assert volumes_for_host(None, "n1") == []
    assert volumes_for_host([], "n1", "absent") == []


def test_bad_state():
    with pytest.raises(ValueError, match="state must be present or absent"):
        volumes_for_host(STORAGES, "n1", "gone")


@pytest.mark.parametrize(
    ("storages", "hosts"),
    [
        (STORAGES, []),
        (
            [
                {"name": "A", "hosts": ["n2", "n1"], "volumes": [{"name": "san", "type": "ocfs2"}]},
                {"name": "B", "hosts": ["n1", "n3"], "volumes": [{"name": "san", "type": "ocfs2"}, {"name": "x"}]},
                {"name": "C", "hosts": ["n4"], "volumes": [{"name": "nfs", "type": "external"}]},
                {"name": "D", "hosts": ["n5"], "state": "absent", "volumes": [{"name": "san", "type": "ocfs2"}]},
                {"name": "E", "hosts": ["n6"], "volumes": [{"name": "san", "type": "ocfs2", "state": "absent"}]},
            ],
            ["n2", "n1", "n3"],
        ),
        (None, []),
    ],
)
def test_storage_hosts_of_a_volume_type(storages, hosts):
    assert storage_hosts(storages, "ocfs2") == hosts


def test_storage_hosts_of_gluster_volumes_add_their_arbiters():
    storages = [
        {"name": "A", "hosts": ["n1", "n2"], "volumes": [{"name": "g", "type": "gluster", "arbiter": "nas"}]},
        {"name": "B", "hosts": ["n2", "n3"], "volumes": [{"name": "g", "type": "gluster", "arbiter": "n1"}]},
        {
            "name": "C",
            "hosts": ["n4"],
            "volumes": [{"name": "g", "type": "gluster", "arbiter": "x", "state": "absent"}],
        },
    ]
    assert storage_hosts(storages, "gluster") == ["n1", "n2", "n3", "nas"]
    assert storage_hosts(storages, "ocfs2") == []


FIXTURES = Path(__file__).parent / "fixtures" / "gluster"
HOSTVARS = {
    "node1": {"gluster_cluster_address": "10.252.0.11"},
    "node2": {"gluster_cluster_address": "10.252.0.12", "ansible_host": "192.0.2.2"},
    "node3": {"ansible_host": "10.252.0.13"},
    "node4": {},
}
ALONE = (
    '<?xml version="1.0"?><cliOutput><opRet>0</opRet><peerStatus><peer><uuid>u</uuid><hostname>localhost</hostname>'
    "<connected>1</connected></peer></peerStatus></cliOutput>"
)


def test_gluster_probe_plan_probes_from_the_member_already_in_a_pool():
    pool = (FIXTURES / "pool_list.xml").read_text()  # node1's: node2 and node3 in
    plan = gluster_probe_plan({"node3": ALONE, "node1": pool}, ["node3", "node1", "node2", "node4"], HOSTVARS)
    assert plan["prober"] == "node1", "node3 is first, but alone: a host outside a pool cannot probe into one"
    assert plan["probe"] == [{"host": "node4", "address": "node4"}]
    assert plan["addresses"] == {
        "node1": "10.252.0.11",
        "node2": "10.252.0.12",
        "node3": "10.252.0.13",
        "node4": "node4",
    }
    assert plan["disconnected"] == []


def test_gluster_probe_plan_of_a_new_pool_and_of_no_member_in_the_run():
    plan = gluster_probe_plan({"node2": ALONE, "node1": ALONE, "node3": ""}, ["node1", "node2", "node3"], HOSTVARS)
    assert plan["prober"] == "node1"
    assert plan["probe"] == [{"host": "node2", "address": "10.252.0.12"}, {"host": "node3", "address": "10.252.0.13"}]
    assert gluster_probe_plan({}, ["node1"], HOSTVARS)["prober"] is None


def test_gluster_probe_plan_names_disconnected_members():
    pool = (FIXTURES / "pool_list.xml").read_text().replace("<connected>1</connected>", "<connected>0</connected>", 1)
    plan = gluster_probe_plan({"node1": pool}, ["node1", "node2", "node3"], HOSTVARS)
    assert plan["disconnected"] == [{"host": "node2", "address": "10.252.0.12"}]
    assert plan["probe"] == []


def test_gluster_probe_plan_refuses_loopback_addresses():
    hostvars = dict(HOSTVARS, node4={"ansible_host": "127.0.0.1"})
    with pytest.raises(ValueError, match=r"node4 \(127.0.0.1\) is a loopback address .* set gluster_cluster_address"):
        gluster_probe_plan({}, ["node1", "node4"], hostvars)
