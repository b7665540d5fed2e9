# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who may reach the storage: cluster addresses that must be private, and address lists. Private.

Pure functions, no I/O: the controller (role filters, action plugins) and the modules use the
same ones, so a list the controller accepted is the list a module writes.

A cluster address (``ocfs2_cluster_address``, ``gluster_cluster_address``) carries traffic with
no authentication (o2cb) or with little (glusterd's management port, the bricks' ports): it
must be an address of a network the Internet does not route to, which is

- RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 6598 shared address space (100.64/10), IPv6
  unique local addresses (fc00::/7), and
- loopback (127/8, ::1) and link-local (169.254/16, fe80::/10): never routed off the host or
  the link, so not exposed either (whether such an address can work is another check's: a
  loopback address is refused for a cluster of more than one host where it is used).

Anything else (a public address, and also the documentation ranges 192.0.2/24, 198.51.100/24,
203.0.113/24, 2001:db8::/32, which are no network of anyone's) is public here, and refused
unless the host's override (``ocfs2_cluster_allow_public``, ``gluster_cluster_allow_public``)
says the admin knows.

An address list (Gluster's ``auth.allow``, Samba's ``hosts allow``) holds addresses, networks
(address/prefix) and, for Gluster, shell wildcards over an address (``10.0.0.*``); or ``*``
alone, which means every address. ``*`` together with addresses is refused: it would make the
addresses meaningless, and is almost always a mistake.
"""

from __future__ import annotations

import ipaddress
import re

PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "127.0.0.0/8",
        "::1/128",
        "169.254.0.0/16",
        "fe80::/10",
    )
)
PRIVATE_WORDS = "RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 6598 (100.64/10) or IPv6 ULA (fc00::/7)"
EVERYONE = "*"
# Why each cluster network must be private, in the words of the refusal.
OCFS2_WHY = (
    "o2cb has no authentication at all: anything that reaches its port on that network can join the "
    "conversation of the cluster and disturb or fence its nodes"
)
GLUSTER_WHY = (
    "glusterd's management port and the bricks carry every guest's disk, unencrypted, and glusterd hands a "
    "volume's layout to anyone who asks"
)
# A Gluster wildcard entry: IPv4 octets, each digits or a shell pattern of digits, '*' and '?'.
_WILDCARD_RE = re.compile(r"^[0-9*?]{1,3}(\.[0-9*?]{1,3}){0,3}$|^[0-9a-fA-F:*?]*:[0-9a-fA-F:*?]*$")


def ip(value):
    """``value`` as an ipaddress object, or None when it is not one address (a name, a network, junk)."""
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None


def is_private(address):
    """Whether ``address`` (text or ipaddress) lies in a network the Internet does not route to."""
    address = ip(address) if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else address
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in PRIVATE_NETWORKS)


def check_cluster_address(option, host, value, allow_public, override, why):
    """A cluster address that is an IP address and private, or a ValueError naming the host, option and fix.

    ``option``: the host variable (ocfs2_cluster_address); ``override``: the host variable that lets
    a public address through (ocfs2_cluster_allow_public); ``why``: what an outsider could do there.
    """
    address = ip(value)
    if address is None:
        raise ValueError(
            f"{option} of host {host} is {value!r}, not an IP address: set it to {host}'s address on the "
            "storage network, such as 10.0.0.11"
        )
    if not allow_public and not is_private(address):
        raise ValueError(
            f"{option} of host {host} is {address}, a public address: {why}, so the cluster network must be a "
            f"private one ({PRIVATE_WORDS}) that no one else can reach. Set {option} to {host}'s address on the "
            f"storage network, or set {override}: true for {host} if that network is closed to others otherwise "
            "(a firewall, a dedicated link)"
        )
    return str(address)


def _entry(text, wildcards):
    """One entry of an address list, normalised, or None when it is not an address, network or wildcard."""
    if ip(text) is not None:
        return str(ip(text))
    if "/" in text:
        try:
            return str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            return None
    if wildcards and ("*" in text or "?" in text) and _WILDCARD_RE.match(text):
        return text
    return None


def allow_list(value, option, wildcards=True):
    """An address list (a list, or text split on commas and blanks) as a list of entries, or a ValueError.

    ``[EVERYONE]`` for ``*`` alone. Entries keep their order, once each.
    """
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    elif isinstance(value, str):
        items = [v for v in re.split(r"[\s,]+", value.strip()) if v]
    else:
        raise ValueError(f"{option} must be a list of addresses or networks, not {type(value).__name__}: fix {option}")
    items = [i for i in items if i]
    if not items:
        raise ValueError(f"{option} is empty: list the addresses or networks that may connect, or '*' for any")
    if EVERYONE in items:
        if len(items) > 1:
            raise ValueError(
                f"{option} gives '*' (every address) together with {', '.join(i for i in items if i != EVERYONE)}: "
                "the addresses would mean nothing. Give the addresses alone, or '*' alone to let every address in"
            )
        return [EVERYONE]
    found, bad = [], []
    for item in items:
        entry = _entry(item, wildcards)
        if entry is None:
            bad.append(item)
        elif entry not in found:
            found.append(entry)
    if bad:
        kinds = "addresses (10.0.0.11), networks (10.0.0.0/24)" + (" or wildcards (10.0.0.*)" if wildcards else "")
        raise ValueError(
            f"{option} holds {', '.join(repr(b) for b in bad)}, not an address or a network: it takes {kinds}, or "
            f"'*' alone; host names are not matched (the server compares the client's address): fix {option}"
        )
    return found


def is_open(entries):
    """Whether an address list lets every address in."""
    return not entries or EVERYONE in entries
