# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the storage role: which volume tasks one host runs, which hosts need what. Private.

The role's declaration (``flexvdi_image_storages``) is validated by its argument spec, which
does not fill in defaults; this fills them in and keeps only what applies to one host, once
per task, so that no loop item is templated just to be skipped.

A storage's host set is its declaration's ``hosts``, never the hosts of the play: ``--limit``,
``serial`` and job slicing shrink the play, and a storage of two hosts seen as one would let a
shared disk with a non-cluster filesystem be mounted twice.
"""

from __future__ import annotations

VOLUME_DEFAULTS = {
    "type": "external",
    "src": None,
    "fstype": None,
    "opts": None,
    "require_mountpoint": False,
    "owner_qemu": False,
    "shared": True,
    "force": False,
    "state": "present",
}


def volumes_for_host(storages, host, state="present"):
    """The volumes ``host`` converges to ``state``, one dict of module arguments each.

    ``present``: volumes that are present in image storages that are present and list
    ``host`` in their ``hosts``. ``absent``: volumes that are absent, on the hosts of their
    image storage, and every volume of an image storage that is absent, on the hosts it
    lists, or on every host when it lists none (absent is absent everywhere).
    """
    if state not in ("present", "absent"):
        raise ValueError("state must be present or absent, not %r" % (state,))
    found = []
    for storage in storages or []:
        storage_present = storage.get("state", "present") == "present"
        hosts = storage.get("hosts")
        if hosts is None and storage_present:
            raise ValueError(
                "image storage %s has no hosts: list every host of the storage in hosts "
                "(for example groups['vdi_hosts']); the hosts of a run are no default: "
                "--limit would shrink them" % storage.get("name")
            )
        if hosts is not None and host not in hosts:
            continue
        for volume in storage.get("volumes") or []:
            item = dict(VOLUME_DEFAULTS, **{k: v for k, v in volume.items() if v is not None})
            present = storage_present and item["state"] == "present"
            if present != (state == "present"):
                continue
            item["image_storage"] = storage["name"]
            found.append(item)
    return found


def storage_hosts(storages, volume_type):
    """Hosts of the present image storages that have a present volume of ``volume_type``, in order, once each.

    The members of what those volumes need on every host (the o2cb cluster of OCFS2 volumes,
    the Gluster trusted pool): the storages' declared hosts, never the play's, then the arbiters
    of those volumes (a Gluster arbiter holds a brick without being a host of the storage).
    """
    found = []
    for storage in storages or []:
        if storage.get("state", "present") != "present":
            continue
        volumes = [v for v in storage.get("volumes") or [] if v.get("state", "present") == "present"]
        if any(v.get("type", "external") == volume_type for v in volumes):
            found += [h for h in storage.get("hosts") or [] if h not in found]
    for storage in storages or []:
        if storage.get("state", "present") != "present":
            continue
        for volume in storage.get("volumes") or []:
            arbiter = volume.get("arbiter")
            present = volume.get("state", "present") == "present"
            if present and volume.get("type", "external") == volume_type and arbiter and arbiter not in found:
                found.append(arbiter)
    return found


def gluster_address(hostvars, host):
    """A host's address in the Gluster trusted pool: gluster_cluster_address, else ansible_host, else its name."""
    try:
        facts = hostvars[host]
        return str(facts.get("gluster_cluster_address") or facts.get("ansible_host") or host)
    except (KeyError, AttributeError, TypeError):
        return str(host)


def gluster_pool(hostvars, hosts):
    """({host: pool address}, [hosts whose public address is allowed]) of ``hosts``, for the Gluster modules.

    A ``gluster_cluster_address`` that is set must be an IP address (a ValueError naming it
    otherwise); whether the addresses are private is checked where they are used (the pool's
    members in gluster_probe_plan, a volume's hosts in the module)."""
    from ansible_collections.flexvdi.storage.plugins.module_utils._netaddr import ip

    addresses, public = {}, []
    for host in hosts:
        explicit = _var(hostvars, host, "gluster_cluster_address")
        if explicit not in (None, "") and ip(explicit) is None:
            raise ValueError(
                f"gluster_cluster_address of host {host} is {explicit!r}, not an IP address: set it to {host}'s "
                "address on the storage network, such as 10.0.0.11"
            )
        addresses[host] = gluster_address(hostvars, host)
        if truthy(_var(hostvars, host, "gluster_cluster_allow_public")):
            public.append(host)
    return addresses, public


def _var(hostvars, host, name):
    try:
        return hostvars[host].get(name)
    except (KeyError, AttributeError, TypeError):
        return None


def truthy(value):
    """An inventory flag's truth: True, or a string such as 'yes'/'true'/'on'/'1' (any case)."""
    return value is True or str(value).strip().lower() in ("true", "yes", "on", "1")


def gluster_probe_plan(pools, hosts, hostvars):
    """Which member of the run probes, and which members it probes, from each member's ``pool list --xml``.

    ``pools``: {member in this run: its ``gluster --xml pool list`` output}; ``hosts``: every
    member, declared. The prober is the first member of the run already in a pool with others
    (a host outside a pool cannot probe into one), else the first member of the run; it probes
    every member that is not "Peer in Cluster" in its pool. Returns {prober, addresses, probe:
    [{host, address}], disconnected: [{host, address}] (in the pool, not connected)}. A member
    whose output is empty (glusterd not installed yet, in check mode) is left out.
    """
    from ansible_collections.flexvdi.storage.plugins.module_utils._gluster_cli import is_loopback, parse, peers
    from ansible_collections.flexvdi.storage.plugins.module_utils._netaddr import GLUSTER_WHY, check_cluster_address, ip

    addresses, public = gluster_pool(hostvars, hosts)
    loopback = [f"{h} ({a})" for h, a in addresses.items() if is_loopback(a)]
    if loopback:
        raise ValueError(
            "the address in the Gluster trusted pool of {} is a loopback address (ansible_host?), which the other "
            "hosts cannot reach: set gluster_cluster_address of each to its address on the storage network".format(
                ", ".join(loopback)
            )
        )
    for host, address in addresses.items():
        if ip(address) is not None:  # a name (no gluster_cluster_address) is checked by the volume's module
            check_cluster_address(
                "gluster_cluster_address",
                host,
                address,
                host in public,
                "gluster_cluster_allow_public",
                GLUSTER_WHY,
            )
    parsed = {
        h: [p for p in peers(parse(text, f"gluster pool list on {h}")) if not p["self"]]
        for h, text in (pools or {}).items()
        if text
    }
    in_run = [h for h in hosts if h in parsed]
    if not in_run:
        return {"prober": None, "addresses": addresses, "probe": [], "disconnected": []}
    prober = next((h for h in in_run if parsed[h]), in_run[0])
    pool = parsed[prober]
    probe, disconnected = [], []
    for host in hosts:
        if host == prober:
            continue
        address = addresses[host]
        known = next((p for p in pool if address in p["hostnames"] or p["hostname"] == address), None)
        if known is None or not known["in_cluster"]:
            probe.append({"host": host, "address": address})
        elif not known["connected"]:
            disconnected.append({"host": host, "address": address})
    return {"prober": prober, "addresses": addresses, "probe": probe, "disconnected": disconnected}


def _client_address(hostvars, host):
    """The address a host connects from, as the inventory gives it: the first of ansible_host,
    gluster_cluster_address and ocfs2_cluster_address that is an IP address and not loopback."""
    from ansible_collections.flexvdi.storage.plugins.module_utils._netaddr import ip

    for name in ("ansible_host", "gluster_cluster_address", "ocfs2_cluster_address"):
        address = ip(_var(hostvars, host, name) or "")
        if address is not None and not address.is_loopback:
            return str(address)
    address = ip(host)
    return str(address) if address is not None and not address.is_loopback else None


def media_share_access(hosts_allow, share, me, hostvars, inventory, declared=None):
    """Who may connect to the media share ``share`` served by ``me`` (role media_server).

    ``hosts_allow``: media_server_hosts_allow (addresses and networks, or '*' alone); empty: the
    addresses of the hosts of the media storages in the inventory whose share is this one and whose
    server is this host (its inventory name, ansible_host or cluster addresses; or a loopback address
    on a host of its own), when the inventory gives every one of them. ``declared``: this host's own
    flexvdi_media_storages as the play sees it (play vars are not in hostvars). Returns {allow: [entries],
    open: bool, why: why it is open, storages: [names], error: a refusal naming the option}.
    """
    from ansible_collections.flexvdi.storage.plugins.module_utils._netaddr import EVERYONE, allow_list, ip

    found = {"allow": [], "open": True, "why": "", "storages": [], "error": ""}
    if hosts_allow not in (None, "", []):
        try:
            entries = allow_list(hosts_allow, "media_server_hosts_allow", wildcards=False)
        except ValueError as exc:
            return dict(found, error=str(exc))
        if entries == [EVERYONE]:
            return dict(found, why="media_server_hosts_allow is '*'")
        return dict(found, allow=entries, open=False)
    mine = {str(v) for v in (me, *(_var(hostvars, me, n) for n in _ADDRESS_VARS)) if v}
    storages, seen = [], set()
    lists = [declared or []]
    for host in inventory:
        try:
            lists.append(hostvars[host].get("flexvdi_media_storages") or [])
        except Exception:  # a host whose variables do not template here: not this share's
            continue
    for declared_here in lists:
        for storage in declared_here if isinstance(declared_here, list) else []:
            if not isinstance(storage, dict) or storage.get("name") in seen:
                continue
            server, hosts = str(storage.get("server") or ""), list(storage.get("hosts") or [])
            local = server == "localhost" or (ip(server) is not None and ip(server).is_loopback)
            if str(storage.get("share") or "").lower() == str(share).lower() and (
                server in mine or (local and me in hosts)
            ):
                seen.add(storage.get("name"))
                storages.append((storage.get("name"), hosts))
    names = [n for n, _hosts in storages]
    if not storages:
        why = (
            f"no media storage of the inventory (flexvdi_media_storages) uses share {share} of {me}, so its "
            "clients are unknown"
        )
        return dict(found, why=why + ": set media_server_hosts_allow to the addresses that mount it")
    allow, unknown = [], []
    for host in [h for _n, hosts in storages for h in hosts] + [me]:
        address = _client_address(hostvars, host)
        if address is None and host != me:
            unknown.append(host)
        elif address is not None and address not in allow:
            allow.append(address)
    if unknown:
        why = (
            f"the inventory gives no address of {', '.join(sorted(set(unknown)))} (host(s) of media storage(s) "
            f"{', '.join(names)}: no ansible_host, gluster_cluster_address or ocfs2_cluster_address that is an IP "
            "address and not loopback)"
        )
        return dict(found, storages=names, why=why + ": set media_server_hosts_allow to the addresses that mount it")
    return dict(found, allow=allow, open=False, storages=names)


_ADDRESS_VARS = ("ansible_host", "gluster_cluster_address", "ocfs2_cluster_address")
