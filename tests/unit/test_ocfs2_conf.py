"""o2cb's cluster.conf: parse and render, stable node numbers, the checks that name the option or host."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.flexvdi.storage.plugins.filter.ocfs2_cluster_conf import ocfs2_cluster_conf
from ansible_collections.flexvdi.storage.plugins.plugin_utils._ocfs2_conf import (
    ConfError,
    Node,
    _mounted_nodes,
    cluster_nodes,
    foreign_stanzas,
    parse,
    plan,
    render,
    render_defaults,
)

# Written by ocfs2-tools 1.8.7 itself: `o2cb --config-file=F add-cluster lab`, then
# `o2cb ... add-node lab node1 --ip 10.251.0.11 --port 7777 --number 1` and node2 --number 5.
O2CB_WRITTEN = (
    "cluster:\n\tname = lab\n\theartbeat_mode = local\n\tnode_count = 2\n\n"
    "node:\n\tcluster = lab\n\tnumber = 1\n\tip_port = 7777\n\tip_address = 10.251.0.11\n\tname = node1\n\n"
    "node:\n\tcluster = lab\n\tnumber = 5\n\tip_port = 7777\n\tip_address = 10.251.0.12\n\tname = node2\n\n"
)

# Debian's README.Debian example: spaces, not tabs, and no heartbeat_mode.
DEBIAN_README = """\
cluster:
        node_count = 2
        name = ocfs2

node:
        number = 1
        cluster = ocfs2
        ip_port = 7777
        ip_address = 192.168.1.1
        name = node1

node:
        number = 2
        cluster = ocfs2
        ip_port = 7777
        ip_address = 192.168.1.2
        name = node2
"""

# ocfs2-tools' examples/cluster.conf: global heartbeat, numbers that are not 1, 2, 3.
GLOBAL_HEARTBEAT = """\
cluster:
\theartbeat_mode = global
\tnode_count = 3
\tname = webcluster

node:
\tnumber = 7
\tcluster = webcluster
\tip_port = 7777
\tip_address = 192.168.0.107
\tname = node7

heartbeat:
\tcluster = webcluster
\tregion = 77D95EF51C0149D2823674FCC162CF8B
"""


def conf(cluster, *nodes):
    """cluster.conf text of nodes given as (name, number, address)."""
    return render(cluster, [Node(name, number, address) for name, number, address in nodes])


def probe(host, nodename=None, text=None, live=None, mounts=(), mounted=None, defaults=None):
    found = {"host": host, "nodename": nodename or host, "conf_text": text, "defaults_text": defaults}
    found.update(live=live or {}, mounts=list(mounts))
    if mounted is not None:
        found["mounted"] = mounted
    return found


def members(*hosts, **extra):
    """Members named h1, h2... with addresses 10.0.0.<n> and gathered facts that name them as
    their host (for those outside the run); extra: host -> dict of overrides."""
    found = []
    for host in hosts:
        member = {"host": host, "address": "10.0.0.%s" % host.lstrip("h"), "node_name": None, "facts_nodename": host}
        member.update(extra.get(host, {}))
        found.append(member)
    return found


def numbers(result):
    return {node["name"]: node["number"] for node in result["nodes"]}


def errors(call):
    with pytest.raises(ConfError) as caught:
        call()
    return " ".join(caught.value.messages)


# --- the file format -------------------------------------------------------------------------


def test_o2cb_written_file_round_trips_byte_for_byte():
    stanzas = parse(O2CB_WRITTEN)
    nodes = cluster_nodes(stanzas, "lab")
    assert nodes == {"node1": Node("node1", 1, "10.251.0.11"), "node2": Node("node2", 5, "10.251.0.12")}
    assert render("lab", nodes.values()) == O2CB_WRITTEN


@pytest.mark.parametrize(
    ("text", "cluster", "expected"),
    [
        (DEBIAN_README, "ocfs2", {"node1": 1, "node2": 2}),
        (O2CB_WRITTEN, "lab", {"node1": 1, "node2": 5}),
        (O2CB_WRITTEN, "other", {}),
        ("# only a comment\n\n", "lab", {}),
        ("", "lab", {}),
    ],
)
def test_nodes_of_a_cluster(text, cluster, expected):
    assert {name: node.number for name, node in cluster_nodes(parse(text), cluster).items()} == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\tname = lab\n", "line 1 is an attribute outside any stanza"),
        ("cluster:\n\tname = lab\n\n\tnode_count = 1\n", "line 4 is an attribute outside any stanza"),
        ("cluster:\nname = lab\n", "line 2 is neither a stanza line"),
        ("cluster:\n\tname = \\\n", "line 2 is a continued value"),
        ("node:\n\tname = a\n\tname = b\n", "line 3: name is set twice"),
    ],
)
def test_unreadable_file_names_the_line(text, message):
    assert message in errors(lambda: parse(text, "h1's cluster.conf"))
    assert "h1's cluster.conf" in errors(lambda: parse(text, "h1's cluster.conf"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            conf("lab", ("a", 1, "10.0.0.1")).replace("number = 1", "number = 255"),
            "number 255 is not between 0 and 254",
        ),
        (conf("lab", ("a", 1, "10.0.0.1")).replace("10.0.0.1", "fe80::1"), "node a of cluster lab is not valid"),
        (conf("lab", ("a", 1, "10.0.0.1")).replace("ip_port = 7777", "ip_port = x"), "ip_port 'x' is not a number"),
        (O2CB_WRITTEN + "cluster:\n\tname = lab\n\tnode_count = 0\n", "defines cluster lab twice (lines 1, 20)"),
        (conf("lab", ("a", 1, "10.0.0.1"), ("b", 1, "10.0.0.2")), "nodes a and b of cluster lab both have number 1"),
        (GLOBAL_HEARTBEAT, "heartbeat_mode = global"),
        (GLOBAL_HEARTBEAT.replace("heartbeat_mode = global", "heartbeat_mode = local"), "heartbeat: regions"),
    ],
)
def test_a_file_o2cb_would_misread_is_refused(text, message):
    cluster = "webcluster" if "webcluster" in text else "lab"
    assert message in errors(lambda: cluster_nodes(parse(text), cluster, "h1's cluster.conf"))


def test_other_clusters_stanzas_are_kept_after_ours():
    text = conf("old", ("x", 3, "10.1.0.3")) + O2CB_WRITTEN
    kept = foreign_stanzas(parse(text), "lab")
    assert [s.kind for s in kept] == ["cluster", "node"]
    rendered = render("lab", cluster_nodes(parse(text), "lab").values(), kept)
    assert rendered == O2CB_WRITTEN + conf("old", ("x", 3, "10.1.0.3"))


# --- stable numbering ------------------------------------------------------------------------

LAB = "lab"


@pytest.mark.parametrize(
    ("case", "listed", "files", "expected"),
    [
        ("fresh cluster: list order", ["h1", "h2", "h3"], {}, {"h1": 1, "h2": 2, "h3": 3}),
        ("a node added", ["h1", "h2", "h3"], {"h1": [("h1", 1), ("h2", 2)]}, {"h1": 1, "h2": 2, "h3": 3}),
        ("the lowest free number", ["h1", "h3", "h4"], {"h1": [("h1", 1), ("h3", 3)]}, {"h1": 1, "h3": 3, "h4": 2}),
        ("a node removed", ["h1", "h3"], {"h1": [("h1", 1), ("h2", 2), ("h3", 3)]}, {"h1": 1, "h3": 3}),
        (
            "the list reordered",
            ["h3", "h1", "h2"],
            {"h1": [("h1", 1), ("h2", 2), ("h3", 3)]},
            {"h1": 1, "h2": 2, "h3": 3},
        ),
        ("a number freed this run is not reused", ["h1", "h4"], {"h1": [("h1", 1), ("h2", 2)]}, {"h1": 1, "h4": 3}),
        ("node 0 of an older file is kept", ["h1", "h2"], {"h1": [("h1", 0)]}, {"h1": 0, "h2": 1}),
        (
            "the union of two hosts' files",
            ["h1", "h2", "h3", "h4"],
            {"h1": [("h1", 1), ("h2", 2)], "h2": [("h1", 1), ("h2", 2), ("h3", 7)]},
            {"h1": 1, "h2": 2, "h3": 7, "h4": 3},
        ),
        (
            "a host without a file yet",
            ["h1", "h2", "h3"],
            {"h1": [("h1", 4), ("h2", 9)], "h3": None},
            {"h1": 4, "h2": 9, "h3": 1},
        ),
    ],
)
def test_stable_numbers(case, listed, files, expected):
    current = []
    for host, nodes in files.items():
        text = None if nodes is None else conf(LAB, *[(n, num, "10.0.0.%s" % n.lstrip("h")) for n, num in nodes])
        current.append(probe(host, text=text))
    result = plan(LAB, members(*listed), current)
    assert numbers(result) == expected, case
    assert [n["number"] for n in result["nodes"]] == sorted(expected.values()), "nodes are listed by number"


def test_running_o2cb_counts_as_a_source_of_numbers():
    live = {
        LAB: {
            "nodes": {
                "h1": {"number": 1, "address": "10.0.0.1", "port": 7777},
                "old": {"number": 2, "address": "10.0.0.9", "port": 7777},
            }
        }
    }
    result = plan(LAB, members("h1", "h2"), [probe("h1", live=live)])
    assert numbers(result) == {"h1": 1, "h2": 3}
    assert [n["name"] for n in result["removed"]] == ["old"]
    assert result["removed"][0]["listed_in"] == ["the running o2cb of h1"]


def test_added_removed_and_readdressed_are_reported():
    text = conf(LAB, ("h1", 1, "10.0.0.1"), ("h2", 2, "10.0.0.2"), ("h3", 3, "10.0.0.3"))
    result = plan(LAB, members("h1", "h2", "h4", h2={"address": "10.0.0.22"}), [probe("h1", text=text)])
    assert numbers(result) == {"h1": 1, "h2": 2, "h4": 4}
    assert result["added"] == ["h4"]
    assert [(n["name"], n["number"]) for n in result["removed"]] == [("h3", 3)]
    assert [(n["name"], n["number"], n["address"]) for n in result["readdressed"]] == [("h2", 2, "10.0.0.22")]
    assert result["readdressed"][0]["was"] == ["10.0.0.2:7777 in h1's /etc/ocfs2/cluster.conf"]
    assert result["check_mounted"] is True


def test_nothing_to_check_when_no_node_leaves_or_moves():
    text = conf(LAB, ("h1", 1, "10.0.0.1"))
    result = plan(LAB, members("h1", "h2"), [probe("h1", text=text)])
    assert result["check_mounted"] is False
    assert result["not_in_run"] == ["h2"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"h1": [("h1", 1, "10.0.0.1")], "h2": [("h1", 2, "10.0.0.1")]},
            "Node h1 of cluster lab is number 1 in h1's /etc/ocfs2/cluster.conf but 2 in h2's /etc/ocfs2/cluster.conf",
        ),
        (
            {"h1": [("h1", 1, "10.0.0.1")], "h2": [("h2", 1, "10.0.0.2")]},
            "Number 1 of cluster lab is node h1 in h1's /etc/ocfs2/cluster.conf but node h2 in h2's /etc/ocfs2/cluster.conf",
        ),
    ],
)
def test_hosts_that_disagree_on_numbers_are_refused_naming_both(files, message):
    current = [probe(host, text=conf(LAB, *nodes)) for host, nodes in files.items()]
    text = errors(lambda: plan(LAB, members("h1", "h2"), current))
    assert message in text
    assert "Nothing was changed" in text


def test_file_and_running_o2cb_that_disagree_are_refused():
    live = {LAB: {"nodes": {"h1": {"number": 3, "address": "10.0.0.1", "port": 7777}}}}
    text = errors(lambda: plan(LAB, members("h1"), [probe("h1", text=conf(LAB, ("h1", 1, "10.0.0.1")), live=live)]))
    assert "number 1 in h1's /etc/ocfs2/cluster.conf but 3 in the running o2cb of h1" in text


def test_an_unreadable_file_is_refused_naming_host_and_line():
    text = errors(lambda: plan(LAB, members("h1"), [probe("h1", text="cluster:\nbroken\n")]))
    assert "h1's /etc/ocfs2/cluster.conf line 2" in text


# --- the input, checked: each message names the option or host, and the fix ------------------


@pytest.mark.parametrize(
    ("listed", "overrides", "message"),
    [
        (
            ["h1", "h2"],
            {"h2": {"address": None}},
            "ocfs2_cluster_address is not set for host h2: set it in its host_vars",
        ),
        (["h1", "h2"], {"h2": {"address": "  "}}, "ocfs2_cluster_address is not set for host h2"),
        (
            ["h1", "h2"],
            {"h2": {"address": "10.0.0.300"}},
            "ocfs2_cluster_address of host h2 is '10.0.0.300', not an IPv4 address",
        ),
        (
            ["h1", "h2"],
            {"h2": {"address": "fe80::2"}},
            "ocfs2_cluster_address of host h2 is 'fe80::2', not an IPv4 address",
        ),
        (["h1", "h2"], {"h2": {"address": "node2.example"}}, "ocfs2_cluster_address of host h2 is 'node2.example'"),
        (
            ["h1", "h2"],
            {"h2": {"address": "127.0.0.2"}},
            "ocfs2_cluster_address of host h2 is 127.0.0.2, a loopback address",
        ),
        (["h1", "h2"], {"h2": {"address": "0.0.0.0"}}, "0.0.0.0, no address a node can listen on"),
        (["h1", "h2"], {"h2": {"address": "224.0.0.1"}}, "224.0.0.1, no address a node can listen on"),
        (["h1", "h2"], {"h2": {"address": "10.0.0.1"}}, "Hosts h1 and h2 both have ocfs2_cluster_address 10.0.0.1"),
        (["h1", "h2"], {"h2": {"node_name": "h1"}}, "Hosts h1 and h2 both have the node name h1"),
        (["h1", "h2", "h1"], {}, "ocfs2_cluster_hosts lists h1 twice"),
        ([], {}, "ocfs2_cluster_hosts is empty"),
        (["h1", "h9"], {"h9": {"in_inventory": False}}, "ocfs2_cluster_hosts lists h9, which is not in the inventory"),
        (
            ["h1", "h2"],
            {"h1": {"node_name": "other"}},
            "ocfs2_cluster_node_name of host h1 is other, but its kernel's name (uname -n) is h1",
        ),
        (["h1", "h2"], {"h2": {"node_name": "bad name"}}, "ocfs2_cluster_node_name of host h2 is 'bad name'"),
        (["h1", "h2"], {"h2": {"node_name": "x" * 65}}, "ocfs2_cluster_node_name of host h2 is 'xxxx"),
    ],
)
def test_bad_input_names_the_option_or_host(listed, overrides, message):
    # h2 is in the run, unless it is given a node name (as a host outside the run would be).
    current = [probe(host) for host in (["h1"] if "node_name" in overrides.get("h2", {}) else ["h1", "h2"])]
    found = []
    for member in members(*listed):
        member.update(overrides.get(member["host"], {}))
        found.append(member)
    assert message in errors(lambda: plan(LAB, found, current))


def test_every_problem_is_reported_at_once():
    found = members("h1", "h2", "h3", h2={"address": "x"}, h3={"address": None})
    text = errors(lambda: plan(LAB, found, [probe("h1")]))
    assert "host h2" in text and "host h3" in text


def test_a_single_node_cluster_may_use_loopback():
    assert numbers(plan(LAB, members("h1", h1={"address": "127.0.0.1"}), [probe("h1")])) == {"h1": 1}


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("lab", True),
        ("flexvdi", True),
        ("A1" * 8, True),
        ("A1" * 8 + "x", False),
        ("my-cluster", False),
        ("", False),
        ("a b", False),
    ],
)
def test_cluster_name(name, ok):
    if ok:
        plan(name, members("h1"), [probe("h1")])
    else:
        assert "ocfs2_cluster_name" in errors(lambda: plan(name, members("h1"), [probe("h1")]))


@pytest.mark.parametrize("port", [0, 65536, "7777", True])
def test_port(port):
    assert "ocfs2_cluster_port" in errors(lambda: plan(LAB, members("h1"), [probe("h1")], port=port))


@pytest.mark.parametrize(
    ("member", "current", "expected"),
    [
        ({}, [probe("h2", nodename="node2.example.com")], "node2.example.com"),
        ({"node_name": "node2"}, [probe("h2", nodename="node2.example.com")], "node2"),
        ({"node_name": "NODE2"}, [probe("h2", nodename="node2")], "NODE2"),
        ({"node_name": "given"}, [], "given"),
        ({"facts_nodename": "fromfacts"}, [], "fromfacts"),
        ({"node_name": "given", "facts_nodename": "fromfacts"}, [], "given"),
        (
            {"facts_nodename": None},
            [probe("h1", text=conf(LAB, ("h1", 1, "10.0.0.1"), ("byaddr", 2, "10.0.0.2")))],
            "byaddr",
        ),
    ],
)
def test_node_names(member, current, expected):
    found = members("h1", "h2", h2=member)
    if not any(p["host"] == "h1" for p in current):
        current = [probe("h1"), *current]
    result = plan(LAB, found, current)
    assert {n["host"]: n["name"] for n in result["nodes"]}["h2"] == expected


def test_a_node_name_that_cannot_be_known_is_an_error_naming_the_host():
    text = errors(lambda: plan(LAB, members("h1", "h2", h2={"facts_nodename": None}), [probe("h1")]))
    assert "The node name of host h2 is unknown" in text
    assert "set ocfs2_cluster_node_name in its host_vars" in text


# --- a node that leaves or moves with volumes mounted ----------------------------------------


def mounted_output(rows):
    """`mounted.ocfs2 -f` output, formatted as mounted.c prints it."""
    dev_width = max([7, *(len(r[0]) for r in rows)])
    cluster_width = max([7, *(len(r[2]) for r in rows)])
    lines = ["%-*s  %-5s  %-*s  %c  %-s" % (dev_width, "Device", "Stack", cluster_width, "Cluster", "F", "Nodes")]
    lines += ["%-*s  %-5s  %-*s  %c  %s" % (dev_width, d, s, cluster_width, c, " ", n) for d, s, c, n in rows]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (mounted_output([("/dev/sdb", "o2cb", "lab", "h1, h2")]), [("/dev/sdb", "o2cb", "lab", ["h1", "h2"])]),
        (mounted_output([("/dev/sdb", "o2cb", "", "Not mounted")]), [("/dev/sdb", "o2cb", "", [])]),
        (
            mounted_output([("/dev/mapper/mpatha", "o2cb", "lab", "1, 3")]),
            [("/dev/mapper/mpatha", "o2cb", "lab", ["1", "3"])],
        ),
        (mounted_output([("/dev/sdd", "None", "", "Not mounted")]), [("/dev/sdd", "None", "", [])]),
        ("", []),
    ],
)
def test_mounted_ocfs2_output(text, expected):
    assert _mounted_nodes(text) == expected


def test_mounted_ocfs2_output_printed_more_than_once():
    """mounted.ocfs2 of ocfs2-tools 1.8.7 on this build host prints its whole output four times when
    stdout is a pipe; every copy is read, and says the same."""
    once = mounted_output([("/dev/loop0", "o2cb", "lab", "2")])
    assert _mounted_nodes(once * 4) == [("/dev/loop0", "o2cb", "lab", ["2"])] * 4


def test_mounted_ocfs2_row_after_an_unreadable_device():
    """A device mounted.ocfs2 cannot read prints no line end: the next row follows on its line."""
    text = mounted_output([("/dev/sdb", "o2cb", "lab", "h1"), ("/dev/sdc", "o2cb", "lab", "h2, h3")])
    glued = text.replace("h1\n/dev/sdc", "/dev/sdc")
    assert _mounted_nodes(glued)[-1] == ("/dev/sdc", "o2cb", "lab", ["h2", "h3"])


THREE = conf(LAB, ("h1", 1, "10.0.0.1"), ("h2", 2, "10.0.0.2"), ("h3", 3, "10.0.0.3"))
MOUNT = {"source": "/dev/sdb", "mount_point": "/var/lib/flexvdi/volumes/S/V", "cluster": True}


@pytest.mark.parametrize(
    ("case", "current", "message"),
    [
        (
            "the leaving node has a volume mounted",
            [probe("h1", text=THREE), probe("h3", text=THREE, mounts=[MOUNT])],
            "Node h3 (host h3) is to leave cluster lab, but it has OCFS2 volumes mounted: /dev/sdb on /var/lib/flexvdi/volumes/S/V",
        ),
        (
            "another host sees it mounted, by name",
            [probe("h1", text=THREE, mounted=mounted_output([("/dev/sdb", "o2cb", "lab", "h1, h3")]))],
            "Node h3 (number 3) is to leave cluster lab, but mounted.ocfs2 -f on h1 shows it has /dev/sdb mounted",
        ),
        (
            "another host sees it mounted, by number",
            [probe("h1", text=THREE, mounted=mounted_output([("/dev/sdb", "o2cb", "", "1, 3")]))],
            "Node h3 (number 3) is to leave cluster lab",
        ),
    ],
)
def test_a_node_with_volumes_mounted_does_not_leave(case, current, message):
    text = errors(lambda: plan(LAB, members("h1", "h2"), current))
    assert message in text, case
    assert "Nothing was changed" in text


@pytest.mark.parametrize(
    ("case", "current"),
    [
        ("a local (non-cluster) mount", [probe("h3", text=THREE, mounts=[dict(MOUNT, cluster=False)])]),
        (
            "nothing mounted",
            [probe("h1", text=THREE, mounted=mounted_output([("/dev/sdb", "o2cb", "lab", "Not mounted")]))],
        ),
        (
            "a device of another cluster",
            [probe("h1", text=THREE, mounted=mounted_output([("/dev/sdb", "o2cb", "other", "h3")]))],
        ),
        ("a local device", [probe("h1", text=THREE, mounted=mounted_output([("/dev/sdb", "None", "", "h3")]))]),
    ],
)
def test_a_node_without_volumes_mounted_leaves(case, current):
    assert numbers(plan(LAB, members("h1", "h2"), current)) == {"h1": 1, "h2": 2}, case


def test_a_node_with_volumes_mounted_does_not_move():
    current = [probe("h1", text=THREE, mounted=mounted_output([("/dev/sdb", "o2cb", "lab", "h1, h2")]))]
    text = errors(lambda: plan(LAB, members("h1", "h2", "h3", h2={"address": "10.0.0.22"}), current))
    assert (
        "Node h2 (number 2) is to move to 10.0.0.22:7777, but mounted.ocfs2 -f on h1 shows it has /dev/sdb mounted"
        in text
    )


# --- one host's part -------------------------------------------------------------------------


def live(*nodes, cluster=LAB):
    return {cluster: {"nodes": {n: {"number": num, "address": a, "port": 7777} for n, num, a in nodes}}}


@pytest.mark.parametrize(
    ("case", "running", "changes"),
    [
        ("offline", {}, []),
        ("online, in step", live(("h1", 1, "10.0.0.1"), ("h2", 2, "10.0.0.2")), []),
        ("online, a node added", live(("h1", 1, "10.0.0.1")), ["add node h2 (number 2, 10.0.0.2:7777)"]),
        (
            "online, a node gone",
            live(("h1", 1, "10.0.0.1"), ("h2", 2, "10.0.0.2"), ("h3", 3, "10.0.0.3")),
            ["drop node h3 (number 3)"],
        ),
    ],
)
def test_what_the_running_cluster_learns(case, running, changes):
    result = plan(LAB, members("h1", "h2"), [probe("h1", live=running)], host="h1")
    assert result["live_changes"] == changes, case
    assert result["online"] is bool(running)
    assert result["expected_live"] == {
        "h1": {"number": 1, "address": "10.0.0.1", "port": 7777},
        "h2": {"number": 2, "address": "10.0.0.2", "port": 7777},
    }


def test_a_host_running_another_cluster_cannot_join():
    text = errors(
        lambda: plan(LAB, members("h1"), [probe("h1", live=live(("h1", 1, "10.0.0.1"), cluster="old"))], host="h1")
    )
    assert "Host h1 runs o2cb cluster old" in text and "or set ocfs2_cluster_name to old" in text


def test_the_hosts_file_keeps_its_other_clusters():
    text = conf("old", ("x", 4, "10.1.0.4")) + conf(LAB, ("h1", 1, "10.0.0.1"))
    result = plan(LAB, members("h1", "h2"), [probe("h1", text=text)], host="h1")
    assert result["text"] == conf(LAB, ("h1", 1, "10.0.0.1"), ("h2", 2, "10.0.0.2")) + conf("old", ("x", 4, "10.1.0.4"))
    assert result["member"] is True and result["node"] == {
        "host": "h1",
        "name": "h1",
        "number": 1,
        "address": "10.0.0.1",
        "port": 7777,
    }


def test_a_host_of_the_run_that_is_no_member_gets_no_file():
    result = plan(LAB, members("h1"), [probe("h1"), probe("h5")], host="h5")
    assert result["member"] is False and result["text"] is None and "defaults_text" not in result


def test_the_same_nodes_on_every_host():
    current = [
        probe("h1", text=THREE),
        probe("h2", text=conf(LAB, ("h1", 1, "10.0.0.1"), ("h2", 2, "10.0.0.2"))),
        probe("h3"),
    ]
    texts = {h: plan(LAB, members("h1", "h2", "h3"), current, host=h)["text"] for h in ("h1", "h2", "h3")}
    assert len(set(texts.values())) == 1


# --- /etc/default/o2cb -----------------------------------------------------------------------

SETTINGS = {"O2CB_ENABLED": "true", "O2CB_BOOTCLUSTER": "lab", "O2CB_HEARTBEAT_THRESHOLD": 31}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "# mine\nO2CB_ENABLED=false\nO2CB_STACK=o2cb\nO2CB_BOOTCLUSTER=ocfs2\n",
            "# mine\nO2CB_ENABLED=true\nO2CB_STACK=o2cb\nO2CB_BOOTCLUSTER=lab\nO2CB_HEARTBEAT_THRESHOLD=31\n",
        ),
        (
            "O2CB_ENABLED=false\nexport O2CB_BOOTCLUSTER=x\n  O2CB_ENABLED=maybe",
            "O2CB_ENABLED=true\nO2CB_BOOTCLUSTER=lab\nO2CB_ENABLED=true\nO2CB_HEARTBEAT_THRESHOLD=31\n",
        ),
        ("", "O2CB_ENABLED=true\nO2CB_BOOTCLUSTER=lab\nO2CB_HEARTBEAT_THRESHOLD=31\n"),
        (
            "#O2CB_ENABLED=false\n",
            "#O2CB_ENABLED=false\nO2CB_ENABLED=true\nO2CB_BOOTCLUSTER=lab\nO2CB_HEARTBEAT_THRESHOLD=31\n",
        ),
    ],
)
def test_defaults_keep_other_lines(before, after):
    assert render_defaults(before, SETTINGS) == after
    assert render_defaults(after, SETTINGS) == after


def test_defaults_for_a_host_without_the_file_have_debians_layout():
    text = render_defaults(None, SETTINGS)
    assert text.startswith("#\n# This is a configuration file for automatic startup of the O2CB\n")
    assert "\n# O2CB_BOOTCLUSTER: If not empty, the name of a cluster to start.\nO2CB_BOOTCLUSTER=lab\n" in text
    assert render_defaults(text, SETTINGS) == text


def test_defaults_refuse_what_the_shell_would_run():
    assert "O2CB_BOOTCLUSTER" in errors(lambda: render_defaults("", {"O2CB_BOOTCLUSTER": "a;reboot"}))


# --- the filter ------------------------------------------------------------------------------


class FakeHostVars(dict):
    """hostvars as the filter sees it: host -> mapping of that host's variables."""


def test_filter_reads_members_from_hostvars():
    hostvars = FakeHostVars(
        h1={"ocfs2_cluster_address": "10.0.0.1"},
        h2={"ocfs2_cluster_address": "10.0.0.2", "ocfs2_cluster_node_name": "node2"},
        h3={"ocfs2_cluster_address": "10.0.0.3", "ansible_facts": {"nodename": "node3"}},
    )
    result = ocfs2_cluster_conf(["h1", "h2", "h3"], hostvars, "lab", [probe("h1")], host="h1", o2cb_settings=SETTINGS)
    assert [(n["host"], n["name"], n["number"]) for n in result["nodes"]] == [
        ("h1", "h1", 1),
        ("h2", "node2", 2),
        ("h3", "node3", 3),
    ]
    assert result["defaults_text"].endswith("O2CB_HEARTBEAT_THRESHOLD=31\n\n")


def test_filter_errors_raise_or_return():
    hostvars = FakeHostVars(h1={"ocfs2_cluster_address": "bad"})
    with pytest.raises(AnsibleFilterError, match="ocfs2_cluster_address of host h1 is 'bad'"):
        ocfs2_cluster_conf(["h1"], hostvars, "lab", [probe("h1")])
    returned = ocfs2_cluster_conf(["h1", "nohost"], hostvars, "lab", [probe("h1")], on_error="return")
    assert len(returned["errors"]) == 2
    assert "nohost, which is not in the inventory" in returned["errors"][1]


def test_filter_wants_a_list_of_hosts():
    with pytest.raises(AnsibleFilterError, match="ocfs2_cluster_hosts must be a list"):
        ocfs2_cluster_conf("h1", FakeHostVars(), "lab", [])
