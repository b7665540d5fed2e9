# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""o2cb's cluster.conf on the controller: parse, stable node numbers, render. Private.

Used by the ``flexvdi.storage.ocfs2_cluster_conf`` filter, hence by the ``ocfs2_cluster`` role.

The format is ocfs2-tools' (o2cb_ctl/jconfig.c): a line ``word:`` opens a stanza
(``cluster:``, ``node:``, ``heartbeat:``), indented ``key = value`` lines are its
attributes, a blank line closes it, ``#`` at the start of a line is a comment. A node
belongs to the cluster named by its ``cluster`` attribute.

Node numbers are stable: a node keeps the number it has in any current cluster.conf or in
the running o2cb (configfs) of any host seen, whatever the order of the member list; a new
node gets the lowest number that none of them uses; a removed node is dropped. Every host
renders the same nodes, so two hosts that already disagree on a node's number (or give one
number to two nodes) are refused, naming both: o2cb needs one numbering on every node, and
picking one of the two could renumber a node that has volumes mounted.

Addresses are checked with the standard library's ``ipaddress`` (IPv4 only: o2cb's network
speaks IPv4 alone and its tools reject anything else). netaddr, which ``ansible.utils.ipaddr``
needs, is in none of the collection's environments, and a controller-side dependency for one
check is not worth it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ansible_collections.flexvdi.storage.plugins.module_utils._netaddr import OCFS2_WHY, check_cluster_address

DEFAULT_PORT = 7777
MAX_NUMBER = 254  # o2cb: "Nodenum should be >=0 and < 255"
FIRST_NEW_NUMBER = 1  # numbering of new nodes starts at 1, as o2cb's documentation does
# New nodes take the lowest free number from 1 up; 0 only once every other number is taken.
_NEW_NUMBERS = (*range(FIRST_NEW_NUMBER, MAX_NUMBER + 1), *range(0, FIRST_NEW_NUMBER))
MAX_NODE_NAME = 64  # O2NM_MAX_NAME_LEN
MAX_CLUSTER_NAME = 16  # OCFS2_CLUSTER_NAME_LEN

_CLUSTER_NAME_RE = re.compile(r"^[A-Za-z0-9]{1,%d}$" % MAX_CLUSTER_NAME)
_NODE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,%d}$" % (MAX_NODE_NAME - 1))
_STANZA_RE = re.compile(r"^(\w+):[ \t]*$")
_ATTR_RE = re.compile(r"^[ \t]+(\w+)[ \t]*=[ \t]*(.*?)[ \t]*$")
# What mounted.ocfs2 -f prints in the Nodes column when no node has the device mounted.
_NO_NODES = ("", "Not mounted", "Heartbeat device")


class ConfError(ValueError):
    """One or more problems, each a sentence that names the option or host and the fix."""

    def __init__(self, messages):
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__(" ".join(self.messages))


# --- the file format -------------------------------------------------------------------------


@dataclass
class Stanza:
    kind: str
    attrs: dict = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Node:
    name: str
    number: int
    address: str
    port: int = DEFAULT_PORT

    def as_dict(self, host=None):
        found = {"name": self.name, "number": self.number, "address": self.address, "port": self.port}
        if host is not None:
            found = {"host": host, **found}
        return found


def parse(text, source="cluster.conf"):
    """The stanzas of a cluster.conf text, in file order. Raises ConfError naming source and line."""
    stanzas = []
    current = None
    for number, line in enumerate((text or "").splitlines(), start=1):
        if line.startswith("#"):
            continue
        if not line.strip():
            current = None
            continue
        opened = _STANZA_RE.match(line)
        if opened:
            current = Stanza(opened.group(1), {}, number)
            stanzas.append(current)
            continue
        attr = _ATTR_RE.match(line)
        if attr and current is not None and not attr.group(2).endswith("\\"):
            key, value = attr.groups()
            if key in current.attrs:
                raise ConfError(
                    "%s line %d: %s is set twice in the same %s: stanza." % (source, number, key, current.kind)
                )
            current.attrs[key] = value
            continue
        if attr and current is None:
            why = "an attribute outside any stanza (a blank line ends a stanza)"
        elif attr:
            why = "a continued value, which o2cb's files never have"
        else:
            why = "neither a stanza line (name:) nor an indented attribute (key = value)"
        raise ConfError("%s line %d is %s: %r." % (source, number, why, line))
    return stanzas


def _int(value, what, low, high):
    if not re.fullmatch(r"[0-9]+", value or ""):
        raise ValueError("%s %r is not a number" % (what, value))
    number = int(value)
    if not low <= number <= high:
        raise ValueError("%s %d is not between %d and %d" % (what, number, low, high))
    return number


def cluster_nodes(stanzas, cluster, source="cluster.conf"):
    """The nodes of ``cluster`` in parsed stanzas, by name. Raises ConfError on what o2cb would misread."""
    problems = []
    clusters = [s for s in stanzas if s.kind == "cluster" and s.attrs.get("name") == cluster]
    if len(clusters) > 1:
        problems.append(
            "%s defines cluster %s twice (lines %s)." % (source, cluster, ", ".join(str(s.line) for s in clusters))
        )
    for stanza in clusters:
        mode = stanza.attrs.get("heartbeat_mode", "local")
        if mode != "local":
            problems.append(
                "%s line %d: cluster %s uses heartbeat_mode = %s; the ocfs2_cluster role manages local heartbeat "
                "only (each volume heartbeats on itself, as flexVDI's volumes do). Switch the cluster back to local "
                "heartbeat by hand (o2cb heartbeat-mode %s local, with every volume unmounted), or use another "
                "ocfs2_cluster_name." % (source, stanza.line, cluster, mode, cluster)
            )
    if any(s.kind == "heartbeat" and s.attrs.get("cluster") == cluster for s in stanzas):
        problems.append(
            "%s has heartbeat: regions for cluster %s (global heartbeat), which the ocfs2_cluster role does not "
            "manage; remove them by hand (o2cb remove-heartbeat) or use another ocfs2_cluster_name." % (source, cluster)
        )
    nodes = {}
    numbers = {}
    for stanza in stanzas:
        if stanza.kind != "node" or stanza.attrs.get("cluster") != cluster:
            continue
        where = "%s line %d" % (source, stanza.line)
        name = stanza.attrs.get("name", "")
        try:
            if not name:
                raise ValueError("the node has no name")
            number = _int(stanza.attrs.get("number"), "number", 0, MAX_NUMBER)
            port = _int(stanza.attrs.get("ip_port"), "ip_port", 1, 65535)
            address = str(ipaddress.IPv4Address(stanza.attrs.get("ip_address", "")))
        except ValueError as exc:
            problems.append(
                "%s: node %s of cluster %s is not valid: %s. Fix or remove that node: stanza."
                % (where, name or "?", cluster, exc)
            )
            continue
        if name in nodes:
            problems.append("%s: node %s of cluster %s is defined twice." % (where, name, cluster))
        elif number in numbers:
            problems.append(
                "%s: nodes %s and %s of cluster %s both have number %d."
                % (where, numbers[number], name, cluster, number)
            )
        else:
            nodes[name] = Node(name, number, address, port)
            numbers[number] = name
    if problems:
        raise ConfError(problems)
    return nodes


def _render_stanza(stanza):
    return "%s:\n%s\n" % (stanza.kind, "".join("\t%s = %s\n" % item for item in stanza.attrs.items()))


def render(cluster, nodes, others=()):
    """cluster.conf with ``cluster`` and its ``nodes`` (by number), then the ``others`` stanzas kept.

    Attributes are in the order o2cb itself writes them (ocfs2-tools 1.8.7), so a file this
    renders equals the one `o2cb add-cluster` and `o2cb add-node` (in number order) write.
    """
    ordered = sorted(nodes, key=lambda n: n.number)
    parts = [
        _render_stanza(Stanza("cluster", {"name": cluster, "heartbeat_mode": "local", "node_count": str(len(ordered))}))
    ]
    for node in ordered:
        attrs = {
            "cluster": cluster,
            "number": str(node.number),
            "ip_port": str(node.port),
            "ip_address": node.address,
            "name": node.name,
        }
        parts.append(_render_stanza(Stanza("node", attrs)))
    parts.extend(_render_stanza(stanza) for stanza in others)
    return "".join(parts)


def foreign_stanzas(stanzas, cluster):
    """The stanzas that are not ``cluster``'s (other clusters, their nodes and heartbeats): kept as they are."""
    kept = []
    for stanza in stanzas:
        ours = stanza.attrs.get("name") if stanza.kind == "cluster" else stanza.attrs.get("cluster")
        if ours != cluster:
            kept.append(stanza)
    return kept


# --- /etc/default/o2cb ------------------------------------------------------------------------

# What Debian's postinst writes (and writes again, from debconf, whenever ocfs2-tools is
# configured: its config script reads the six values back from the file first), for a host
# that has no file yet. The same text, so a later upgrade of the package leaves it as it is.
_DEFAULTS_HEADER = """\
#
# This is a configuration file for automatic startup of the O2CB
# driver.  It is generated by running 'dpkg-reconfigure ocfs2-tools'.
# Please use that method to modify this file.
#
"""
_DEFAULTS_HELP = {
    "O2CB_ENABLED": "'true' means to load the driver on boot.",
    "O2CB_BOOTCLUSTER": "If not empty, the name of a cluster to start.",
    "O2CB_HEARTBEAT_THRESHOLD": "Iterations before a node is considered dead.",
    "O2CB_IDLE_TIMEOUT_MS": "Time in ms before a network connection is considered dead.",
    "O2CB_KEEPALIVE_DELAY_MS": "Max. time in ms before a keepalive packet is sent.",
    "O2CB_RECONNECT_DELAY_MS": "Min. time in ms between connection attempts.",
}
_SHELL_SAFE_RE = re.compile(r"^[A-Za-z0-9_.:/-]*$")


def render_defaults(text, settings):
    """/etc/default/o2cb (a shell file the init script sources) with each KEY=value of
    ``settings`` set: every line that assigns KEY (``KEY=`` or ``export KEY=``) becomes
    ``KEY=value`` in place, a key no line assigns is added at the end, every other line stays.
    No file (None): Debian's layout, with its comments."""
    for key, value in settings.items():
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", key) or not _SHELL_SAFE_RE.match(str(value)):
            raise ConfError(
                "/etc/default/o2cb cannot hold %s=%r: a value is letters, digits and . _ : / - only." % (key, value)
            )
    if text is None:
        parts = [_DEFAULTS_HEADER]
        for key, value in settings.items():
            parts.append("\n# %s: %s\n%s=%s\n" % (key, _DEFAULTS_HELP.get(key, ""), key, value))
        return "".join(parts) + "\n"
    lines = text.splitlines(keepends=True)
    found = set()
    for index, line in enumerate(lines):
        assigned = re.match(r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=", line)
        if assigned and assigned.group(1) in settings:
            key = assigned.group(1)
            lines[index] = "%s=%s\n" % (key, settings[key])
            found.add(key)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines.extend("%s=%s\n" % (key, value) for key, value in settings.items() if key not in found)
    return "".join(lines)


# --- validation of the role's input ----------------------------------------------------------


def check_cluster_name(name):
    if not isinstance(name, str) or not _CLUSTER_NAME_RE.match(name):
        raise ConfError(
            "ocfs2_cluster_name %r is not a name o2cb accepts: 1 to %d letters and digits (no '-', '_' or "
            "spaces), for example flexvdi." % (name, MAX_CLUSTER_NAME)
        )


def check_port(port):
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfError(
            "ocfs2_cluster_port %r is not a TCP port: use a number from 1 to 65535 (o2cb's is 7777)." % (port,)
        )


def node_name_matches(name, nodename):
    """o2cb's own rule (op_register.c node_is_local): the node name is the host name, or the
    part of it before a '.', case aside."""
    name, nodename = name.lower(), (nodename or "").lower()
    return nodename == name or nodename.startswith(name + ".")


def _address(host, value, members, allow_public=False):
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(
            "ocfs2_cluster_address is not set for host %s: set it in its host_vars to its IPv4 address on the "
            "storage network, where the other nodes reach o2cb's port." % host
        )
    try:
        address = ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        raise ValueError(
            "ocfs2_cluster_address of host %s is %r, not an IPv4 address (o2cb's network speaks IPv4 only): "
            "set it to %s's address on the storage network, such as 192.0.2.11." % (host, value, host)
        ) from None
    bad = None
    if address.is_unspecified or address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
        bad = "no address a node can listen on"
    elif address.is_loopback and members > 1:
        bad = "a loopback address, which the other nodes cannot reach"
    if bad:
        raise ValueError(
            "ocfs2_cluster_address of host %s is %s, %s: set it to %s's address on the storage network."
            % (host, address, bad, host)
        )
    check_cluster_address("ocfs2_cluster_address", host, address, allow_public, "ocfs2_cluster_allow_public", OCFS2_WHY)
    return str(address)


# --- the plan --------------------------------------------------------------------------------


@dataclass
class _Source:
    label: str
    host: str
    nodes: dict


def _probe_sources(cluster, current, config_path):
    """(sources of existing numbering, parsed stanzas by host), from every host's probe."""
    sources = []
    stanzas_by_host = {}
    problems = []
    for probe in current:
        host = probe["host"]
        text = probe.get("conf_text")
        label = "%s's %s" % (host, config_path)
        if text is not None:
            try:
                stanzas = parse(text, label)
                stanzas_by_host[host] = stanzas
                sources.append(_Source(label, host, cluster_nodes(stanzas, cluster, label)))
            except ConfError as exc:
                problems.extend(
                    "%s Nothing was changed: fix the file (or remove it), then run again." % m for m in exc.messages
                )
        live = (probe.get("live") or {}).get(cluster)
        if live is not None:
            nodes = {}
            for name, attrs in sorted((live.get("nodes") or {}).items()):
                try:
                    nodes[name] = Node(name, int(attrs["number"]), str(attrs["address"]), int(attrs["port"]))
                except (KeyError, TypeError, ValueError):
                    problems.append(
                        "The running o2cb of %s has node %s without a number, address or port in configfs."
                        % (host, name)
                    )
            sources.append(_Source("the running o2cb of %s" % host, host, nodes))
    if problems:
        raise ConfError(problems)
    return sources, stanzas_by_host


def _existing_numbering(cluster, sources):
    by_name = {}
    by_number = {}
    problems = []
    for source in sources:
        for node in source.nodes.values():
            seen = by_name.get(node.name)
            if seen and seen[0].number != node.number:
                problems.append(
                    "Node %s of cluster %s is number %d in %s but %d in %s: o2cb needs one number per node on every "
                    "host. Nothing was changed. Make them agree (the number a running o2cb uses is in "
                    "/sys/kernel/config/cluster/%s/node/%s/num), then run again."
                    % (node.name, cluster, seen[0].number, seen[1], node.number, source.label, cluster, node.name)
                )
                continue
            other = by_number.get(node.number)
            if other and other[0] != node.name:
                problems.append(
                    "Number %d of cluster %s is node %s in %s but node %s in %s: o2cb needs one numbering on every "
                    "host. Nothing was changed. Make them agree, then run again."
                    % (node.number, cluster, other[0], other[1], node.name, source.label)
                )
                continue
            by_name.setdefault(node.name, (node, source.label))
            by_number.setdefault(node.number, (node.name, source.label))
    if problems:
        raise ConfError(problems)
    return by_name, by_number


def _member_names(cluster, members, probes, by_name):
    """(host, node name, address) of every member, in the order listed."""
    problems = []
    resolved = []
    listed = {}
    for member in members:
        host = member["host"]
        if host in listed:
            problems.append("ocfs2_cluster_hosts lists %s twice: list each member once." % host)
            continue
        listed[host] = True
        if not member.get("in_inventory", True):
            problems.append(
                "ocfs2_cluster_hosts lists %s, which is not in the inventory: add it to the inventory or remove it from "
                "ocfs2_cluster_hosts." % host
            )
            continue
        try:
            address = _address(host, member.get("address"), len(members), bool(member.get("allow_public")))
        except ValueError as exc:
            problems.append(str(exc))
            continue
        explicit = member.get("node_name")
        probe = probes.get(host)
        kernel = probe.get("nodename") if probe else None
        if explicit is not None and not (isinstance(explicit, str) and _NODE_NAME_RE.match(explicit)):
            problems.append(
                "ocfs2_cluster_node_name of host %s is %r: a node name is the host's name as its kernel has it "
                "(uname -n), up to %d letters, digits, '.', '_' or '-'; fix it or remove it."
                % (host, explicit, MAX_NODE_NAME)
            )
            continue
        if explicit and kernel and not node_name_matches(explicit, kernel):
            problems.append(
                "ocfs2_cluster_node_name of host %s is %s, but its kernel's name (uname -n) is %s: o2cb finds its own node "
                "by that name, so %s could never join the cluster. Set ocfs2_cluster_node_name to %s, or remove it."
                % (host, explicit, kernel, host, kernel)
            )
            continue
        name = explicit or kernel or member.get("facts_nodename")
        if not name:
            by_address = [n for n in by_name.values() if n[0].address == address]
            if len(by_address) == 1:
                name = by_address[0][0].name
        if not name:
            problems.append(
                "The node name of host %s is unknown: it is not in this run (--limit?), no gathered facts give its "
                "uname -n, and no current cluster.conf of cluster %s has a node at its address %s. Run the role on %s "
                "too, or set ocfs2_cluster_node_name in its host_vars to its uname -n." % (host, cluster, address, host)
            )
            continue
        if not _NODE_NAME_RE.match(name):
            problems.append(
                "The kernel's name (uname -n) of host %s is %r, which o2cb cannot use as a node name (up to %d "
                "letters, digits, '.', '_' or '-'): give the host such a name." % (host, name, MAX_NODE_NAME)
            )
            continue
        resolved.append((host, name, address))
    seen_names = {}
    seen_addresses = {}
    for host, name, address in resolved:
        if name in seen_names:
            problems.append(
                "Hosts %s and %s both have the node name %s: o2cb tells nodes apart by name; give each host its own "
                "name (uname -n, or ocfs2_cluster_node_name for a host outside the run)."
                % (seen_names[name], host, name)
            )
        if address in seen_addresses:
            problems.append(
                "Hosts %s and %s both have ocfs2_cluster_address %s: o2cb tells nodes apart by address; give each its "
                "own address on the storage network." % (seen_addresses[address], host, address)
            )
        seen_names.setdefault(name, host)
        seen_addresses.setdefault(address, host)
    if not members:
        problems.append(
            "ocfs2_cluster_hosts is empty: list every member of the cluster, written out (for example "
            "groups['vdi_hosts']); the hosts of a run are no default, --limit would shrink them."
        )
    if problems:
        raise ConfError(problems)
    return resolved


def _mounted_nodes(text):
    """(device, stack, cluster, [node names or numbers]) of each device in `mounted.ocfs2 -f` output.

    Rows are aligned on the header's columns ("Device  Stack  Cluster  F  Nodes"); the nodes are
    names, or numbers where the host's o2cb does not know their names. A device mounted.ocfs2
    could not read gets no line end, so the next row follows on the same line.
    """
    lines = (text or "").splitlines()
    header = next((line for line in lines if line.startswith("Device") and "Nodes" in line), None)
    if header is None:
        return []
    stack_at, cluster_at, nodes_at = (header.index(word) for word in ("Stack", "Cluster", "Nodes"))
    flag_at = header.index("  F  ", cluster_at) + 2
    found = []
    for line in lines[lines.index(header) + 1 :]:
        for row in re.split(r"(?<=\s)(?=/dev/)", line):
            if not row.startswith("/"):
                continue
            device = row.split()[0]
            stack = row[stack_at:cluster_at].strip()
            name = row[cluster_at:flag_at].strip()
            listed = row[nodes_at:].strip()
            nodes = [] if listed in _NO_NODES else [piece.split()[-1] for piece in listed.split(",") if piece.strip()]
            found.append((device, stack, name, nodes))
    return found


def _mount_guard(cluster, touched, probes):
    """Refuse to drop or readdress a node that has a volume of the cluster mounted: seen in its
    own mounts when it is in the run, or in any host's `mounted.ocfs2 -f` (probe key "mounted")."""
    problems = []
    for node, why in touched:
        for host, probe in sorted(probes.items()):
            if not node_name_matches(node.name, probe.get("nodename")):
                continue
            mounts = [m for m in probe.get("mounts") or [] if m.get("cluster", True)]
            if mounts:
                where = ", ".join("%s on %s" % (m.get("source"), m.get("mount_point")) for m in mounts)
                problems.append(
                    "Node %s (host %s) %s, but it has OCFS2 volumes mounted: %s. o2cb would cut it off under them. "
                    "Nothing was changed: unmount them on %s first (or leave the node as it was), then run again."
                    % (node.name, host, why, where, host)
                )
        for host, probe in sorted(probes.items()):
            for device, stack, name, nodes in _mounted_nodes(probe.get("mounted")):
                if stack == "None" or (name and name != cluster):
                    continue
                if node.name in nodes or str(node.number) in nodes:
                    problems.append(
                        "Node %s (number %d) %s, but mounted.ocfs2 -f on %s shows it has %s mounted. Nothing was "
                        "changed: unmount it on %s first (or leave the node as it was), then run again."
                        % (node.name, node.number, why, host, device, node.name)
                    )
    if problems:
        raise ConfError(problems)


def _number_for(cluster, name, used):
    number = next((n for n in _NEW_NUMBERS if n not in used), None)
    if number is None:
        raise ConfError(
            "Cluster %s has no free node number left for %s (o2cb numbers nodes 0 to %d, and the current files and "
            "running o2cb of the hosts seen use them all): remove nodes first." % (cluster, name, MAX_NUMBER)
        )
    return number


def plan(cluster, members, current, port=DEFAULT_PORT, host=None, config_path="/etc/ocfs2/cluster.conf", settings=None):
    """What cluster.conf every member gets, with stable numbers, and what changes.

    cluster: the cluster's name. members: one dict per listed host, in ocfs2_cluster_hosts
    order: host, address, node_name (explicit, or None), facts_nodename (or None), in_inventory.
    current: one probe per host of the run: host, nodename (uname -n), conf_text (None when
    there is no file), live ({cluster: {nodes: {name: {number, address, port}}}} from configfs),
    mounts (its OCFS2 mounts: source, mount_point, cluster) and, once the role has run it,
    mounted (the output of `mounted.ocfs2 -f`). host: the host whose file is rendered (its
    stanzas of other clusters are kept) and whose running o2cb is compared. settings: the
    KEY=value lines its /etc/default/o2cb (probe key defaults_text) gets.
    """
    check_cluster_name(cluster)
    check_port(port)
    probes = {p["host"]: p for p in current}
    sources, stanzas_by_host = _probe_sources(cluster, current, config_path)
    by_name, by_number = _existing_numbering(cluster, sources)
    resolved = _member_names(cluster, members, probes, by_name)

    used = set(by_number)
    nodes = []
    added = []
    readdressed = []
    for member_host, name, address in resolved:
        if name in by_name:
            number = by_name[name][0].number
        else:
            number = _number_for(cluster, name, used)
            used.add(number)
            added.append(name)
        node = Node(name, number, address, port)
        nodes.append((member_host, node))
        was = sorted(
            {
                "%s:%d in %s" % (s.nodes[name].address, s.nodes[name].port, s.label)
                for s in sources
                if name in s.nodes and (s.nodes[name].address, s.nodes[name].port) != (address, port)
            }
        )
        if was:
            readdressed.append((node, was))
    nodes.sort(key=lambda item: item[1].number)

    desired = {node.name for _h, node in nodes}
    removed = [
        (node, sorted(s.label for s in sources if name in s.nodes))
        for name, (node, _label) in sorted(by_name.items(), key=lambda item: item[1][0].number)
        if name not in desired
    ]
    touched = [(node, "is to leave cluster %s" % cluster) for node, _where in removed]
    touched += [(node, "is to move to %s:%d" % (node.address, node.port)) for node, _was in readdressed]
    _mount_guard(cluster, touched, probes)

    result = {
        "cluster": cluster,
        "nodes": [node.as_dict(h) for h, node in nodes],
        "added": added,
        "removed": [dict(node.as_dict(), listed_in=where) for node, where in removed],
        "readdressed": [dict(node.as_dict(), was=was) for node, was in readdressed],
        "check_mounted": bool(touched),
        "not_in_run": [h for h, _n in nodes if h not in probes],
    }
    if host is not None:
        result.update(_host_plan(cluster, host, nodes, probes, stanzas_by_host))
        if result["member"] and settings is not None:
            result["defaults_text"] = render_defaults(probes.get(host, {}).get("defaults_text"), settings)
    return result


def _live_nodes(running):
    found = {}
    for name, attrs in (running.get("nodes") or {}).items():
        found[name] = {"number": int(attrs["number"]), "address": str(attrs["address"]), "port": int(attrs["port"])}
    return found


def _host_plan(cluster, host, nodes, probes, stanzas_by_host):
    """The part of the plan that is one host's: its file, and what its running o2cb must learn."""
    probe = probes.get(host) or {}
    own = next((node for h, node in nodes if h == host), None)
    live = probe.get("live") or {}
    others = sorted(name for name in live if name != cluster)
    if own is not None and others:
        raise ConfError(
            "Host %s runs o2cb cluster %s, and o2cb runs one cluster at a time, so it cannot join %s. Nothing was "
            "changed: stop the other one on %s (unmount its volumes, then systemctl stop o2cb), or set "
            "ocfs2_cluster_name to %s." % (host, others[0], cluster, host, others[0])
        )
    expected = {node.name: {"number": node.number, "address": node.address, "port": node.port} for _h, node in nodes}
    running = live.get(cluster)
    changes = []
    if own is not None and running is not None:
        current = _live_nodes(running)
        for name in sorted(set(expected) | set(current), key=lambda n: (expected.get(n) or current[n])["number"]):
            if name not in current:
                changes.append(
                    "add node %s (number %d, %s:%d)"
                    % (name, expected[name]["number"], expected[name]["address"], expected[name]["port"])
                )
            elif name not in expected:
                changes.append("drop node %s (number %d)" % (name, current[name]["number"]))
            elif current[name] != expected[name]:
                changes.append(
                    "register node %s again, at %s:%d" % (name, expected[name]["address"], expected[name]["port"])
                )
    others_kept = foreign_stanzas(stanzas_by_host.get(host, []), cluster)
    return {
        "member": own is not None,
        "node": own.as_dict(host) if own else None,
        "text": render(cluster, [node for _h, node in nodes], others_kept) if own else None,
        "online": running is not None,
        "expected_live": expected,
        "live_changes": changes,
    }
