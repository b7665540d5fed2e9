"""Who may reach the storage: private cluster addresses and address lists (module_utils/_netaddr.py)."""

from __future__ import annotations

import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils import _netaddr
from ansible_collections.flexvdi.storage.plugins.plugin_utils import _ocfs2_conf, _role


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("10.0.0.1", True),
        ("10.255.255.255", True),
        ("172.16.0.1", True),
        ("172.31.255.254", True),
        ("172.32.0.1", False),
        ("192.168.1.1", True),
        ("100.64.0.1", True),  # RFC 6598, carrier-grade NAT
        ("100.127.255.254", True),
        ("100.128.0.1", False),
        ("127.0.0.1", True),  # never leaves the host
        ("169.254.10.1", True),  # link-local: never routed off the link
        ("fd00::1", True),  # ULA
        ("fc00::1", True),
        ("fe80::1", True),
        ("::1", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:8.8.8.8", False),
        ("8.8.8.8", False),
        ("192.0.2.11", False),  # documentation: no one's network, not private
        ("203.0.113.5", False),
        ("2001:db8::1", False),
        ("2a00:1450::1", False),
        ("node1", False),
        ("", False),
    ],
)
def test_private_ranges(address, private):
    assert _netaddr.is_private(address) is private


@pytest.mark.parametrize(
    ("value", "allow", "message"),
    [
        ("node1.example", False, "ocfs2_cluster_address of host h1 is 'node1.example', not an IP address"),
        ("10.0.0.300", False, "is '10.0.0.300', not an IP address: set it to h1's address"),
        ("203.0.113.7", False, "ocfs2_cluster_address of host h1 is 203.0.113.7, a public address: WHY, so"),
        ("8.8.8.8", False, "or set ocfs2_cluster_allow_public: true for h1"),
    ],
)
def test_cluster_address_refusals_name_host_address_why_and_fix(value, allow, message):
    with pytest.raises(ValueError, match="ocfs2_cluster_address of host h1") as caught:
        _netaddr.check_cluster_address("ocfs2_cluster_address", "h1", value, allow, "ocfs2_cluster_allow_public", "WHY")
    assert message in str(caught.value)


@pytest.mark.parametrize("value", ["10.0.0.1", "100.64.1.1", "fd12::1", " 192.168.0.9 "])
def test_private_cluster_addresses_pass(value):
    assert _netaddr.check_cluster_address("o", "h", value, False, "x", "y") == value.strip()


def test_a_public_cluster_address_passes_with_the_override():
    assert _netaddr.check_cluster_address("o", "h", "203.0.113.7", True, "x", "y") == "203.0.113.7"


@pytest.mark.parametrize(
    ("value", "wildcards", "entries"),
    [
        ("10.0.0.1,10.0.0.2", True, ["10.0.0.1", "10.0.0.2"]),
        ("10.0.0.1, 10.0.0.2 10.0.0.1", True, ["10.0.0.1", "10.0.0.2"]),
        (["10.0.0.0/24", "fd00::/8"], True, ["10.0.0.0/24", "fd00::/8"]),
        (["10.0.0.5/24"], True, ["10.0.0.0/24"]),
        ("10.0.*.*", True, ["10.0.*.*"]),
        ("10.0.0.?", True, ["10.0.0.?"]),
        ("*", True, ["*"]),
        (["*"], False, ["*"]),
        (["192.168.1.10", "192.168.2.0/24"], False, ["192.168.1.10", "192.168.2.0/24"]),
    ],
)
def test_address_lists(value, wildcards, entries):
    assert _netaddr.allow_list(value, "opt", wildcards) == entries


@pytest.mark.parametrize(
    ("value", "wildcards", "message"),
    [
        ("*,10.0.0.1", True, "opt gives '*' (every address) together with 10.0.0.1"),
        (["10.0.0.1", "*"], False, "together with 10.0.0.1: the addresses would mean nothing"),
        ("node1", True, "opt holds 'node1', not an address or a network"),
        (["10.0.0.300"], True, "holds '10.0.0.300'"),
        (["10.0.0.0/33"], True, "holds '10.0.0.0/33'"),
        (["10.0.*.*"], False, "holds '10.0.*.*'"),
        (["a*b"], True, "holds 'a*b'"),
        ("", True, "opt is empty"),
        ([], False, "opt is empty"),
        (5, False, "opt must be a list of addresses or networks, not int"),
    ],
)
def test_bad_address_lists_name_the_option(value, wildcards, message):
    with pytest.raises(ValueError, match="opt") as caught:
        _netaddr.allow_list(value, "opt", wildcards)
    assert message in str(caught.value)


def test_open_lists():
    assert _netaddr.is_open(["*"]) and _netaddr.is_open([]) and not _netaddr.is_open(["10.0.0.1"])


# --- where they are used on the controller -------------------------------------------------------


def _ocfs2_members(address, allow_public=False):
    return [
        {"host": "h1", "address": "10.0.0.1", "node_name": "h1"},
        {"host": "h2", "address": address, "node_name": "h2", "allow_public": allow_public},
    ]


def test_ocfs2_refuses_a_public_cluster_address_unless_overridden():
    with pytest.raises(_ocfs2_conf.ConfError) as caught:
        _ocfs2_conf.plan("c", _ocfs2_members("203.0.113.2"), [])
    words = " ".join(caught.value.messages)
    assert "ocfs2_cluster_address of host h2 is 203.0.113.2, a public address: o2cb has no authentication" in words
    assert "ocfs2_cluster_allow_public: true for h2" in words
    planned = _ocfs2_conf.plan("c", _ocfs2_members("203.0.113.2", allow_public=True), [])
    assert "203.0.113.2" in str(planned)


@pytest.mark.parametrize(
    ("hostvars", "message"),
    [
        ({"n2": {"gluster_cluster_address": "node2.example"}}, "gluster_cluster_address of host n2 is 'node2.example'"),
        ({"n2": {"gluster_cluster_address": "198.51.100.2"}}, "n2 is 198.51.100.2, a public address: glusterd's"),
        ({"n2": {"ansible_host": "198.51.100.2"}}, "n2 is 198.51.100.2, a public address"),
    ],
)
def test_gluster_pool_members_refuse_bad_or_public_addresses(hostvars, message):
    hostvars = dict({"n1": {"gluster_cluster_address": "10.0.0.1"}}, **hostvars)
    with pytest.raises(ValueError, match="n2") as caught:
        _role.gluster_probe_plan({}, ["n1", "n2"], hostvars)
    assert message in str(caught.value)


def test_gluster_pool_members_with_the_override_and_names_pass():
    hostvars = {
        "n1": {"gluster_cluster_address": "10.0.0.1"},
        "n2": {"gluster_cluster_address": "198.51.100.2", "gluster_cluster_allow_public": True},
        "n3": {},  # its inventory name: checked by the volume's module, where it resolves
    }
    plan = _role.gluster_probe_plan({}, ["n1", "n2", "n3"], hostvars)
    assert plan["addresses"] == {"n1": "10.0.0.1", "n2": "198.51.100.2", "n3": "n3"}
    assert _role.gluster_pool(hostvars, ["n1", "n2", "n3"]) == (plan["addresses"], ["n2"])


# --- media_server: who may connect to the share ---------------------------------------------------

_CIFS = {"name": "cifs", "server": "10.251.0.20", "share": "media", "hosts": ["node1", "node2"]}
# The lab's shape: SSH through 127.0.0.1, the storage network in the cluster addresses.
_LAB = {
    "node1": {"ansible_host": "127.0.0.1", "gluster_cluster_address": "10.251.0.11", "flexvdi_media_storages": [_CIFS]},
    "node2": {"ansible_host": "127.0.0.1", "ocfs2_cluster_address": "10.251.0.12", "flexvdi_media_storages": [_CIFS]},
    "nas": {"ansible_host": "127.0.0.1", "gluster_cluster_address": "10.251.0.20"},
}


def _access(hosts_allow, hostvars=None, me="nas", share="media"):
    hostvars = hostvars or _LAB
    return _role.media_share_access(hosts_allow, share, me, hostvars, list(hostvars))


def test_media_share_defaults_to_the_hosts_of_the_media_storages_using_it():
    found = _access([])
    assert (found["allow"], found["open"], found["storages"], found["error"]) == (
        ["10.251.0.11", "10.251.0.12", "10.251.0.20"],
        False,
        ["cifs"],
        "",
    )


@pytest.mark.parametrize(
    ("hostvars", "share", "why"),
    [
        (_LAB, "iso", "no media storage of the inventory (flexvdi_media_storages) uses share iso of nas"),
        (
            dict(_LAB, node2={"ansible_host": "node2.example", "flexvdi_media_storages": [_CIFS]}),
            "media",
            "the inventory gives no address of node2 (host(s) of media storage(s) cifs",
        ),
    ],
)
def test_media_share_stays_open_when_its_clients_are_unknown(hostvars, share, why):
    found = _access([], hostvars, share=share)
    assert found["open"] and found["allow"] == [] and why in found["why"], found
    assert "set media_server_hosts_allow" in found["why"]


def test_a_local_media_storage_needs_no_address():
    hostvars = {"localhost": {"flexvdi_media_storages": [dict(_CIFS, server="127.0.0.1", hosts=["localhost"])]}}
    found = _access([], hostvars, me="localhost")
    assert (found["allow"], found["open"]) == ([], False)
    # getting_started.yml declares it in play vars, which hostvars lack: the role passes its own view.
    play = [dict(_CIFS, server="127.0.0.1", hosts=["localhost"])]
    found = _role.media_share_access([], "media", "localhost", {"localhost": {}}, ["localhost"], play)
    assert (found["allow"], found["open"], found["storages"]) == ([], False, ["cifs"])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["10.0.0.0/24", "10.1.0.5"], {"allow": ["10.0.0.0/24", "10.1.0.5"], "open": False, "error": ""}),
        (["*"], {"allow": [], "open": True, "error": ""}),
    ],
)
def test_media_server_hosts_allow_given_wins(given, expected):
    found = _access(given)
    assert {k: found[k] for k in expected} == expected


@pytest.mark.parametrize(
    ("given", "words"),
    [
        (["*", "10.0.0.1"], "media_server_hosts_allow gives '*' (every address) together with 10.0.0.1"),
        (["node1"], "media_server_hosts_allow holds 'node1', not an address or a network"),
        (["10.0.0.*"], "media_server_hosts_allow holds '10.0.0.*'"),
    ],
)
def test_media_server_hosts_allow_refusals(given, words):
    assert words in _access(given)["error"]
