"""The storage role's volume selection: defaults filled in, only what applies to one host."""

from __future__ import annotations

import pytest

from ansible_collections.flexvdi.storage.plugins.plugin_utils._role import volumes_for_host

STORAGES = [
    {
        "name": "A",
        "hosts": ["n1", "n2"],
        "volumes": [
            {"name": "keep", "mount_point": "/a/keep", "src": "nas:/x", "opts": None},
            {"name": "gone", "mount_point": "/a/gone", "state": "absent", "force": True},
        ],
    },
    {"name": "B", "volumes": [{"name": "everywhere", "mount_point": "/b", "owner_qemu": True}]},
    {"name": "C", "hosts": ["n1"], "state": "absent", "volumes": [{"name": "old", "mount_point": "/c"}]},
    {"name": "D", "hosts": ["n3"], "volumes": [{"name": "elsewhere", "mount_point": "/d"}]},
    {"name": "E", "hosts": ["n1"]},
]


def _names(items):
    return [(i["image_storage"], i["name"]) for i in items]


def test_present_on_a_listed_host_with_defaults():
    items = volumes_for_host(STORAGES, "n1", ["n1", "n2", "n3"])
    assert _names(items) == [("A", "keep"), ("B", "everywhere")]
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


def test_absent_volumes_and_volumes_of_absent_storages():
    items = volumes_for_host(STORAGES, "n1", ["n1", "n2", "n3"], "absent")
    assert _names(items) == [("A", "gone"), ("C", "old")]
    assert items[0]["force"] is True


def test_storage_without_hosts_is_on_every_play_host():
    assert _names(volumes_for_host(STORAGES, "n3", ["n1", "n2", "n3"])) == [("B", "everywhere"), ("D", "elsewhere")]
    assert _names(volumes_for_host(STORAGES, "n3", ["n1"])) == [("D", "elsewhere")]


def test_nothing_declared():
    assert volumes_for_host(None, "n1", ["n1"]) == []
    assert volumes_for_host([], "n1", ["n1"], "absent") == []


def test_bad_state():
    with pytest.raises(ValueError, match="state must be present or absent"):
        volumes_for_host(STORAGES, "n1", ["n1"], "gone")
