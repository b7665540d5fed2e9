# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gluster volumes: the hosts' own bricks as one replicated volume, FUSE-mounted by every host. Private.

This file plans and reports; talking to gluster (its ``--xml`` answers, the CLI with its
retries and timeouts, option group files, command lines) is _gluster_cli's.

Phases (DESIGN section 4): every host reads the cluster's state with ``gluster --xml`` (never
its human output; _gluster_cli is the one parser of it); every host checks the declaration
(at least two data hosts, replica, arbiter, brick paths, every brick's host a connected peer),
so a bad one is refused everywhere before anything is written; the designated host, the
first of the image storage's declared hosts, creates the volume, sets the options that
differ, starts it, adds the bricks of hosts added to the storage and (only with ``force``,
never while heal is pending) removes those of hosts gone; the other hosts wait, bounded,
until the volume exists and is started; then every host FUSE-mounts it with
``backup-volfile-servers`` naming the other hosts and an fstab entry.

A mount whose client died answers ``Transport endpoint is not connected``: the status calls
it ``stale`` (looked at with a bounded stat, so a hung mount never hangs the run) and the next
converge mounts it again. Brick data is never removed: ``absent`` unmounts and unregisters,
and stops and deletes the Gluster volume (its definition, not its bricks) only with
``delete_volume: true``.
"""

from __future__ import annotations

import errno
import os
import re
import socket

from . import _netaddr, _probe
from ._blockdev import describe_signature, is_block_device, resolve_device, signature
from ._errors import StorageError
from ._gluster_cli import (
    BRICK_LABEL,
    CLI_TIMEOUT,
    bricks_online,
    cli,
    create_argv,
    heal,
    is_loopback,
    mkfs_brick_argv,
    peers,
    pending_total,
    read_group,
    set_argv,
    volume_info,
    volumes,
    wait_bricks_online,
)
from ._mounts import containing_mount, mounted_at, normpath
from ._ocfs2 import check_device
from ._validate import check_path
from ._volumes import (
    PROBE_TIMEOUT,
    MountSpec,
    check_responsive,
    converge_volume,
    mount_and_verify,
    on_network_fs,
    plan_owner,
    plan_remount,
    plan_removal,
    remount_from,
)
from ._volumes import status as volume_status

EXPERIMENTAL = (
    "Gluster volumes are experimental in flexVDI: keep backups of the guests' images, and watch the "
    "volume's bricks and pending heal entries (flexvdi.storage.storage_info)"
)
DEFAULT_CREATE_TIMEOUT = 300
VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # glusterd: alphanumerics, '-' and '_'
OPTION_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$")
AUTH_ALLOW = "auth.allow"
ENOTCONN_TEXT = os.strerror(errno.ENOTCONN)  # "Transport endpoint is not connected"
_TRUE = frozenset(("on", "yes", "true", "enable", "enabled", "1"))
_FALSE = frozenset(("off", "no", "false", "disable", "disabled", "0"))


# --- options ---------------------------------------------------------------------------------


def option_value(value):
    """A user's option value as gluster stores it: YAML booleans as on/off, numbers as text."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value).strip()


def _same(a, b):
    a, b = str(a).strip().lower(), str(b).strip().lower()
    return a == b or (a in _TRUE and b in _TRUE) or (a in _FALSE and b in _FALSE)


def check_options(options, what):
    """``options``: full gluster keys (section.name) to scalar values; returns them as text.

    ``auth.allow`` may also be a list; it is checked (addresses, networks, wildcards, or '*' alone)
    and kept as glusterd stores it, comma-separated.
    """
    wanted = {}
    for key, value in (options or {}).items():
        if not isinstance(key, str) or not OPTION_KEY_RE.match(key):
            raise StorageError(
                f"{what}: options key {key!r} is not a full Gluster option name such as performance.read-ahead "
                "(gluster volume set help lists them): fix options"
            )
        if key == AUTH_ALLOW and isinstance(value, (list, str)):
            try:
                value = ",".join(_netaddr.allow_list(value, "options auth.allow"))
            except ValueError as exc:
                raise StorageError(f"{what}: {exc}") from None
        if value is None or isinstance(value, (dict, list)) or re.search(r"[\x00-\x1f\x7f]", str(value)):
            raise StorageError(f"{what}: options {key} must be a single value (text, number or boolean): fix options")
        wanted[key] = option_value(value)
    return wanted


def allowed(options):
    """The entries of ``auth.allow`` in a volume's options: ['*'] when unset (glusterd's default lets everyone in)."""
    value = (options or {}).get(AUTH_ALLOW)
    return [v for v in re.split(r"[\s,]+", value.strip()) if v] if value and value.strip() else [_netaddr.EVERYONE]


def desired_options(options, virt_profile, qemu, group=None, allow=None):
    """What the volume must have set: the virt group and the qemu user's ids (``virt_profile``), ``auth.allow``
    (``allow``: the pool addresses of the storage's hosts and arbiter), then ``options`` (which win)."""
    wanted = {}
    if virt_profile:
        wanted.update(group if group is not None else read_group("virt"))
        wanted["storage.owner-uid"] = str(qemu.uid)
        wanted["storage.owner-gid"] = str(qemu.gid)
    if allow:
        wanted[AUTH_ALLOW] = ",".join(allow)
    wanted.update(options)
    return wanted


def diff_options(current, wanted):
    """[(key, current value or None, wanted value)] for each option that differs, in ``wanted``'s order.

    ``auth.allow`` is a set: the same entries in another order are the same."""

    def same(key, want):
        if key == AUTH_ALLOW:  # unset is glusterd's default, '*'
            return set(allowed(current)) == set(allowed({key: want}))
        return key in current and _same(current[key], want)

    return [(k, current.get(k), v) for k, v in wanted.items() if not same(k, v)]


# --- layout ----------------------------------------------------------------------------------


def check_volume_name(name, what):
    if not VOLUME_NAME_RE.match(name):
        raise StorageError(
            f"{what}: name {name!r} cannot name a Gluster volume: use letters, digits, '-' and '_' only (no '.'): "
            "fix name"
        )
    return name


def layout(hosts, arbiter, replica, force, what):
    """(data hosts, replica) of the declaration, or a StorageError naming the option to fix."""
    data = [h for h in hosts if h != arbiter]
    if len(data) < 2:
        raise StorageError(
            f"{what}: a Gluster volume replicates each file on the bricks of at least two hosts, and image storage "
            f"has {len(data)} data host(s) ({', '.join(data) or 'none'}): list at least two hosts in the image "
            "storage's hosts (for one host, use an external volume)"
        )
    replica = len(data) if replica is None else replica
    if replica != len(data):
        raise StorageError(
            f"{what}: replica {replica} differs from the {len(data)} data hosts of the image storage "
            f"({', '.join(data)}): every host holds one full copy, so replica is the number of data hosts; "
            "distributed volumes are not supported: fix replica (or leave it unset)"
        )
    if arbiter is not None and replica != 2:
        raise StorageError(
            f"{what}: arbiter {arbiter} is for two data hosts (replica 3 arbiter 1) and there are {replica}: "
            "with three or more data hosts quorum needs no arbiter: unset arbiter"
        )
    if replica == 2 and arbiter is None and not force:
        raise StorageError(
            f"{what}: replica 2 without an arbiter is refused: when the two hosts lose sight of each other both "
            "keep writing, and the copies of an image diverge (split-brain) with no majority to say which is "
            "right. Set arbiter to a third host that holds only metadata (a few MB; the NAS will do), add a third "
            "data host, or set force: true to accept the risk"
        )
    return data, replica


def check_brick(host, brick, mount_point, what):
    """The brick directory: an absolute path of its own, not inside a volume (registered or mounted)."""
    path = check_path(brick, what, option="brick")
    if _inside(path, mount_point):
        raise StorageError(f"{what}: brick {path} is inside the volume's own mount_point {mount_point}: fix brick")
    for storage_name, storage in host.registry_data()["image_storages"].items():
        for other, record in storage.get("volumes", {}).items():
            if (storage_name, other) == (host.params["image_storage"], host.params["name"]):
                continue
            mp = record.get("mount_point")
            if mp and (_inside(path, mp) or _inside(mp, path)):
                raise StorageError(
                    f"{what}: brick {path} is inside volume {other} of image storage {storage_name} ({mp}) on host "
                    f"{host.hostname}: a brick must be a directory of this host's own disk: fix brick"
                )
    holder = containing_mount(host.mounts, path) or mounted_at(host.mounts, path)
    if holder is not None and _probe.is_network_fstype(holder.fstype):
        raise StorageError(
            f"{what}: brick {path} lies on {holder.mount_point} ({holder.fstype} from {holder.source}) on host "
            f"{host.hostname}: a brick must be on this host's own disk: fix brick"
        )
    return path


def _inside(path, directory):
    path, directory = normpath(path), normpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def check_against_others(all_volumes, volume, bricks, what):
    """No brick of ours is, holds, or lies inside a brick of another Gluster volume on the same host."""
    for other in all_volumes:
        if other["name"] == volume:
            continue
        for theirs in other["bricks"]:
            for address, path in bricks:
                if theirs["address"] == address and (_inside(path, theirs["path"]) or _inside(theirs["path"], path)):
                    raise StorageError(
                        f"{what}: brick {address}:{path} overlaps brick {theirs['name']} of Gluster volume "
                        f"{other['name']}: every brick needs a directory of its own: fix brick"
                    )


def resolve(name):
    """The IP addresses ``name`` resolves to on this host (/etc/hosts, DNS); empty when it does not."""
    try:
        return {info[4][0] for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return set()


def check_peers(pool, addresses, me_address, what, names):
    """Every brick's host is a connected peer of this host's trusted pool, else a StorageError naming it."""
    for address in addresses:
        if address == me_address:
            continue
        peer = next((p for p in pool if address in p["hostnames"] or p["hostname"] == address), None)
        if peer is None:
            # A peer probed by its address is known by its host name to the other members
            # (glusterd names it from the connection): match the names it resolves to.
            peer = next((p for p in pool if any(address in resolve(n) for n in p["hostnames"])), None)
        host = names.get(address, address)
        if peer is None:
            raise StorageError(
                f"{what}: peer {host} ({address}) is not in the Gluster trusted pool of this host: probe it "
                "(role flexvdi.storage.gluster_cluster does), or fix gluster_cluster_address of that host"
            )
        if not peer["connected"] or not peer["in_cluster"]:
            state = peer["state"] or "unknown"
            raise StorageError(
                f"{what}: peer {host} ({address}) is unreachable ({state}, "
                f"{'connected' if peer['connected'] else 'Disconnected'}): nothing was created; start glusterd "
                "there, or fix the network between the hosts, then run again"
            )


# --- the module ------------------------------------------------------------------------------


def converge(host):
    p = host.params
    what = "Gluster volume {} of image storage {}".format(p["name"], p["image_storage"])
    host.module.warn(EXPERIMENTAL)
    if p["state"] == "present":
        check_volume_name(p["name"], what)
        if p["create_timeout"] < 0:
            raise StorageError(
                f"{what}: create_timeout {p['create_timeout']} must be 0 or more seconds: fix create_timeout"
            )
        check_options(p["options"], what)

    def mount_point_of(storage):
        wanted = p["mount_point"] or os.path.join(storage.get("root") or "/", p["name"])
        return check_path(wanted, what, resolve=not on_network_fs(host, wanted))

    result = converge_volume(host, "gluster", what, mount_point_of, plan_present, status, plan_absent=plan_absent)
    volume = result.get("volume") or {}
    if volume.get("status") == "online" and volume.get("message") and volume.get("qemu_writable") is not False:
        # Served, but not as declared (a brick offline, its state unknown): never reported as fine.
        host.module.warn("{}: {}".format(what, volume["message"]))
    return result


class Cluster:
    """This run's view of the declaration: who holds bricks where, and by which address."""

    def __init__(self, host, storage, what):
        p = host.params
        self.hosts = list(storage.get("hosts") or [host.hostname])
        self.me = host.hostname
        self.addresses = {h: (p["addresses"] or {}).get(h) or h for h in self.hosts + [p["arbiter"] or self.me]}
        self.designated = self.hosts[0]
        self.arbiter = p["arbiter"]
        self.data, self.replica = layout(self.hosts, self.arbiter, p["replica"], p["force"], what)
        self.brick_hosts = self.data + ([self.arbiter] if self.arbiter else [])
        self.names = {self.addresses[h]: h for h in self.brick_hosts}
        for h in self.brick_hosts:
            if is_loopback(self.addresses[h]):
                raise StorageError(
                    f"{what}: host {h}'s address in the Gluster trusted pool is {self.addresses[h]}, a loopback "
                    "address (its ansible_host?), which glusterd refuses for bricks and the other hosts cannot "
                    f"reach: set gluster_cluster_address of {h} to its address on the storage network"
                )
        # Who may connect to the bricks: the storage's hosts (they mount it) and the arbiter.
        self.allowed_hosts = self.hosts + [h for h in self.brick_hosts if h not in self.hosts]
        self.public_ok = set(p.get("allow_public") or [])
        self.what = what
        self._allowed = None

    def allowed(self):
        """The pool addresses of the storage's hosts and arbiter, as IP addresses (auth.allow matches no names).

        A public one is refused unless its host's gluster_cluster_allow_public is true."""
        if self._allowed is not None:
            return self._allowed
        found = []
        for h in self.allowed_hosts:
            address = self.addresses[h]
            ips = [address] if _netaddr.ip(address) is not None else sorted(resolve(address))
            if not ips:
                raise StorageError(
                    f"{self.what}: host {h}'s address in the Gluster trusted pool, {address}, does not resolve to an "
                    "IP address on this host, and auth.allow (the addresses that may mount the volume) needs one: "
                    f"set gluster_cluster_address of {h} to its IP address on the storage network"
                )
            for one in ips:
                try:
                    one = _netaddr.check_cluster_address(
                        "gluster_cluster_address",
                        h,
                        one,
                        h in self.public_ok,
                        "gluster_cluster_allow_public",
                        _netaddr.GLUSTER_WHY,
                    )
                except ValueError as exc:
                    raise StorageError(f"{self.what}: {exc}") from None
                if one not in found:
                    found.append(one)
        self._allowed = found
        return found

    def bricks(self, path):
        return [(self.addresses[h], path) for h in self.brick_hosts]

    def mount_spec(self, volume):
        mine = self.addresses[self.me]
        others = [self.addresses[h] for h in self.brick_hosts if self.addresses[h] != mine]
        opts = ["_netdev"] + (["backup-volfile-servers=" + ":".join(others)] if others else [])
        return MountSpec(f"{mine}:/{volume}", "network", "glusterfs", opts)


def plan_present(host, plan, storage, existing, mount_point, what):
    p = host.params
    volume = p["name"]
    cluster = Cluster(host, storage, what)
    brick = check_brick(host, p["brick"], mount_point, what)
    wanted_bricks = cluster.bricks(brick)
    user_options = check_options(p["options"], what)
    pool = cluster.allowed()  # every host checks the addresses (private, or knowingly public) before anything
    own = AUTH_ALLOW in user_options
    allow = allowed(user_options) if own else pool
    if own and _netaddr.is_open(allow):
        host.module.warn(
            f"{what}: options auth.allow is '*': any machine that reaches the bricks' ports can mount the volume "
            "that holds the guests' disks. Leave auth.allow out of options to allow only the storage's hosts"
        )
    spec = cluster.mount_spec(volume)
    check_responsive(host, mount_point, what)
    current = mounted_at(host.mounts, mount_point)
    if current is not None and current.source.rstrip("/") != spec.src:
        raise StorageError(
            f"{what}: mount_point {mount_point} is already a mount point of {current.source} ({current.fstype}) on "
            f"host {cluster.me}: unmount it, or choose another mount_point"
        )
    if os.path.lexists(mount_point) and not os.path.isdir(mount_point) and current is None:
        raise StorageError(f"{what}: mount_point {mount_point} exists and is not a directory: fix mount_point")

    everything = volumes(cli(host.runner, ["volume", "info"], what))
    check_against_others(everything, volume, wanted_bricks, what)
    info = next((v for v in everything if v["name"] == volume), None)
    designated = cluster.me == cluster.designated
    if info is None:
        pool = peers(cli(host.runner, ["pool", "list"], what))
        check_peers(
            pool, [address for address, _path in wanted_bricks], cluster.addresses[cluster.me], what, cluster.names
        )
        if designated and host.stage != "converge":
            _plan_create(host, plan, cluster, volume, wanted_bricks, user_options, what)
        else:
            # In the converge phase nobody creates: the create phase did, on the first host.
            _plan_wait(host, plan, cluster, volume, what)
    else:
        _plan_adopt(host, plan, cluster, info, wanted_bricks, user_options, designated, what)
    if host.stage == "create":
        return None  # the create phase creates and starts (first host only); mounting is the converge phase's

    stale = current is not None and is_stale(mount_point)
    mounted_here = current is not None and not stale
    if current is None:
        plan.mkdirs(mount_point)
    old_options = remount_from(existing, host.fstab.find(mount_point), spec)
    host.fstab.set(spec.entry(mount_point))
    host.plan_fstab(plan)
    if stale:
        _plan_remount_stale(host, plan, spec, mount_point, what)
    elif current is None:
        _plan_mount(host, plan, spec, mount_point, what)
    elif old_options is not None:
        plan_remount(host, plan, spec, old_options, mount_point, what, p["force"])
    plan_owner(host, plan, mount_point, settled=mounted_here)
    return {
        "type": "gluster",
        "mount_point": mount_point,
        "src": spec.src,
        "kind": "network",
        "fstype": "glusterfs",
        "opts": spec.options,
        "owner_qemu": True,
        "volume": volume,
        "brick": brick,
        "replica": cluster.replica,
        "arbiter": cluster.arbiter,
        "bricks": [{"host": h, "address": cluster.addresses[h]} for h in cluster.brick_hosts],
        "transport": p["transport"],
    }


def _wanted(host, user_options, cluster):
    p = host.params
    qemu = host.qemu_user(required=True) if p["virt_profile"] else None
    return desired_options(user_options, p["virt_profile"], qemu, allow=cluster.allowed())


def _set_options(host, plan, volume, changes, what):
    if not changes:
        return
    words = ", ".join(f"{k}={v}" for k, _old, v in changes)

    # One `volume set` takes every pair: the virt profile's two dozen options are one call, not
    # two dozen (each a cluster-wide transaction of glusterd: seconds apiece on a slow host).
    def do():
        cli(host.runner, set_argv(volume, [(key, value) for key, _old, value in changes]), what, timeout=CLI_TIMEOUT)

    def undo():
        restore = [(key, old) for key, old, _value in changes if old is not None]
        if restore:
            cli(host.runner, set_argv(volume, restore), what, timeout=CLI_TIMEOUT)
        for key, old, _value in changes:
            if old is None:
                cli(host.runner, ["volume", "reset", volume, key], what, timeout=CLI_TIMEOUT)

    plan.add(f"set {len(changes)} option(s) of Gluster volume {volume}: {words}", do, undo)


def _plan_create(host, plan, cluster, volume, bricks, user_options, what):
    p = host.params
    argv = create_argv(volume, cluster.replica, cluster.arbiter, p["transport"], bricks, p["force"])
    layout_words = (
        f"replica 3 arbiter 1 ({cluster.arbiter} holds metadata only)"
        if cluster.arbiter
        else f"replica {cluster.replica}"
    )

    def create():
        try:
            cli(host.runner, argv, what, timeout=CLI_TIMEOUT)
        except StorageError as exc:
            if "root partition" in exc.msg or "mount point" in exc.msg:
                raise StorageError(
                    f"{exc.msg}. A brick belongs on a filesystem of its own (role flexvdi.storage.gluster_cluster "
                    "prepares one from gluster_cluster_bricks); to use this directory anyway set force: true"
                ) from None
            raise

    def delete():
        cli(host.runner, ["volume", "delete", volume], what, timeout=CLI_TIMEOUT)

    plan.add(
        f"create Gluster volume {volume}, {layout_words}, bricks {' '.join(f'{a}:{b}' for a, b in bricks)}",
        create,
        delete,
    )
    _set_options(host, plan, volume, diff_options({}, _wanted(host, user_options, cluster)), what)
    _plan_start(host, plan, volume, what)


def _plan_start(host, plan, volume, what):
    def start():
        cli(host.runner, ["volume", "start", volume], what, timeout=CLI_TIMEOUT)
        wait_bricks_online(host.runner, volume, what)

    plan.add(
        f"start Gluster volume {volume}",
        start,
        lambda: cli(host.runner, ["volume", "stop", volume], what, timeout=CLI_TIMEOUT),
    )


def _plan_wait(host, plan, cluster, volume, what):
    def ready():
        info = volume_info(host.runner, volume, what)
        if info is not None and info["started"]:
            return None
        return f"{volume} does not exist" if info is None else f"{volume} is {info['status']}"

    host.await_peer(
        plan,
        host.params["image_storage"],
        cluster.designated,
        f"create and start Gluster volume {volume}",
        host.params["create_timeout"],
        ready,
    )


def _plan_adopt(host, plan, cluster, info, wanted_bricks, user_options, designated, what):
    """An existing volume: the same kind, bricks added or (force) removed, options, started."""
    p = host.params
    volume = info["name"]
    if bool(info["arbiter"]) != bool(cluster.arbiter):
        raise StorageError(
            f"{what}: Gluster volume {volume} exists {'with' if info['arbiter'] else 'without'} an arbiter brick and "
            f"the declaration has {'arbiter ' + cluster.arbiter if cluster.arbiter else 'none'}: changing that is a "
            "migration this module does not do: fix arbiter"
        )
    if info["transport"] != p["transport"]:
        raise StorageError(
            f"{what}: Gluster volume {volume} uses transport {info['transport']}, not {p['transport']}: a volume's "
            "transport is fixed when it is created: fix transport"
        )
    have = [(b["address"], b["path"]) for b in info["bricks"]]
    added = [b for b in wanted_bricks if b not in have]
    gone = [b for b in have if b not in wanted_bricks]
    if added and cluster.arbiter:
        raise StorageError(
            f"{what}: Gluster volume {volume} has bricks {', '.join(f'{a}:{b}' for a, b in have)}; the declaration "
            f"wants {', '.join(f'{a}:{b}' for a, b in wanted_bricks)}. Bricks of an arbitrated volume are not "
            "changed by this module: fix brick or hosts"
        )
    if gone and not p["force"]:
        raise StorageError(
            f"{what}: Gluster volume {volume} has brick(s) {', '.join(f'{a}:{b}' for a, b in gone)} that the "
            "declaration does not list (a host left the image storage, or brick changed). Removing a brick drops "
            "one copy of every image: set force: true to remove it (refused while heal is pending; the brick's "
            "data stays on its disk), or fix hosts and brick"
        )
    if designated:
        if added:
            count = len(have) + len(added)
            bricks = [f"{a}:{b}" for a, b in added]
            plan.add(
                f"add brick(s) {' '.join(bricks)} to Gluster volume {volume} (replica {count})",
                lambda: cli(
                    host.runner,
                    ["volume", "add-brick", volume, "replica", str(count), *bricks, *(["force"] if p["force"] else [])],
                    what,
                    timeout=CLI_TIMEOUT,
                ),
            )
        if gone:
            pending = pending_total(heal(cli(host.runner, ["volume", "heal", volume, "info", "summary"], what)))
            if pending is None or pending > 0:
                raise StorageError(
                    f"{what}: removing brick(s) of Gluster volume {volume} is refused while heal is "
                    f"{'pending (%d entries)' % pending if pending else 'unknown (no brick answered)'}: the brick "
                    "may hold the only good copy. Wait for gluster volume heal info summary to show 0, then run again"
                )
            count = len(have) - len(gone)
            bricks = [f"{a}:{b}" for a, b in gone]
            plan.add(
                f"force: true: remove brick(s) {' '.join(bricks)} from Gluster volume {volume} (replica {count}; "
                "the data stays on those disks)",
                lambda: cli(
                    host.runner,
                    ["volume", "remove-brick", volume, "replica", str(count), *bricks, "force"],
                    what,
                    timeout=CLI_TIMEOUT,
                ),
            )
        _set_options(host, plan, volume, diff_options(info["options"], _wanted(host, user_options, cluster)), what)
        if not info["started"]:
            _plan_start(host, plan, volume, what)
    elif not info["started"]:
        _plan_wait(host, plan, cluster, volume, what)


def is_stale(mount_point):
    """Whether the FUSE client of ``mount_point`` died: stat answers ENOTCONN and no client runs.

    A live client answers ENOTCONN too when none of the volume's servers answers: that mount is
    not stale (mounting it again would only lose it), and the liveness probe of the details
    view and of a converge reports its servers as not responding. Bounded in time: a mount that
    does not answer at all is not called stale here either.
    """
    ok, value = _probe.bounded(_probe.statfs_errno, mount_point, timeout=PROBE_TIMEOUT)
    return ok and value == errno.ENOTCONN and not _probe.fuse_client_alive(mount_point)


def _plan_mount(host, plan, spec, mount_point, what):
    def undo():
        host.runner.umount(mount_point, what)
        host.forget_mounts()

    plan.add(
        f"mount {spec.src} on {mount_point} ({spec.fstype}, {spec.options})",
        lambda: mount_and_verify(host, spec, mount_point, what),
        undo,
    )


def _plan_remount_stale(host, plan, spec, mount_point, what):
    def do():
        rc, _out, _err = host.runner.run(["umount", "--", mount_point], what, check=False)
        if rc != 0:
            host.runner.run(["umount", "-l", "--", mount_point], what)
        host.forget_mounts()
        mount_and_verify(host, spec, mount_point, what)

    plan.add(f"mount {spec.src} on {mount_point} again (its client died: {ENOTCONN_TEXT})", do)


def plan_absent(host, plan, storage_name, name, record, force):
    """Unmount (guarded) and drop the fstab entry; with delete_volume, the designated host stops and deletes it."""
    p = host.params
    what = f"Gluster volume {name} of image storage {storage_name}"
    current = mounted_at(host.mounts, record["mount_point"])
    if current is not None and is_stale(record["mount_point"]):
        mount_point = record["mount_point"]
        plan.add(
            f"unmount {mount_point} ({what}; its client died)",
            lambda: (host.runner.run(["umount", "-l", "--", mount_point], what), host.forget_mounts()),
        )
        entry = host.fstab.find(mount_point)
        if entry is not None and entry.spec == record.get("src"):
            host.fstab.remove(mount_point)
    else:
        plan_removal(host, plan, storage_name, name, record, force)
    if not p.get("delete_volume"):
        return
    hosts = [b["host"] for b in record.get("bricks") or []]
    designated = hosts[0] if hosts else host.hostname
    if host.hostname != designated:
        return
    volume = record.get("volume") or name
    info = volume_info(host.runner, volume, what)
    if info is None:
        return
    if info["started"]:
        plan.add(
            f"stop Gluster volume {volume} (delete_volume: true; every host's mount of it stops working)",
            lambda: cli(host.runner, ["volume", "stop", volume], what, timeout=CLI_TIMEOUT),
            lambda: cli(host.runner, ["volume", "start", volume], what, timeout=CLI_TIMEOUT),
        )
    plan.add(
        f"delete Gluster volume {volume} (delete_volume: true; the data stays in its bricks)",
        lambda: cli(host.runner, ["volume", "delete", volume], what, timeout=CLI_TIMEOUT),
    )


# --- status ----------------------------------------------------------------------------------


def status(host, storage_name, name, record, probe_fs=True, write=False):
    """The details view plus Gluster's: bricks online per host, pending heal entries; ``stale`` for a dead client."""
    mount_point = record["mount_point"]
    stale = mounted_at(host.mounts, mount_point) is not None and is_stale(mount_point)
    info = volume_status(host, storage_name, name, record, probe_fs=probe_fs and not stale, write=write)
    if stale:
        info.update(
            status="stale",
            message=f"{mount_point}: {ENOTCONN_TEXT} (the Gluster client of this mount died): the next converge "
            "mounts it again",
        )
    volume = record.get("volume") or name
    info.update(
        volume=volume, brick=record.get("brick"), bricks=None, heal_pending=None, volume_status=None, auth_allow=None
    )
    if not probe_fs:
        return info
    what = f"Gluster volume {name} of image storage {storage_name}"
    names = {b["address"]: b["host"] for b in record.get("bricks") or []}
    try:
        vol = volume_info(host.runner, volume, what)
        if vol is None:
            info["volume_status"] = "missing"
            _note(info, f"Gluster volume {volume} does not exist")
            return info
        info["volume_status"] = vol["status"]
        info["auth_allow"] = allowed(vol["options"])
        online = {}
        if vol["started"]:
            online = bricks_online(host.runner, volume, what)
            if online is None:
                _note(info, "the bricks' state is unknown: gluster volume status did not answer (see glusterd's log)")
            info["heal_pending"] = pending_total(
                heal(cli(host.runner, ["volume", "heal", volume, "info", "summary"], what, check=False))
            )
        info["bricks"] = [
            {
                "host": names.get(b["address"], b["address"]),
                "brick": b["name"],
                "arbiter": b["arbiter"],
                # None: unknown (glusterd did not answer), never reported as a brick down
                "online": None if online is None else online.get((b["address"], b["path"]), False),
            }
            for b in vol["bricks"]
        ]
        down = [b["host"] for b in info["bricks"] if b["online"] is False]
        if down:
            _note(info, "brick(s) offline on " + ", ".join(down))
    except StorageError as exc:
        _note(info, exc.msg)
    return info


def _note(info, message):
    info["message"] = "; ".join(m for m in (info["message"], message) if m)


# --- brick filesystems (module gluster_brick, role gluster_cluster) ---------------------------

BRICK_OPTS = "noatime,nofail"


def decide_brick(device, sig, force):
    """``format``, ``adopt`` or a StorageError: only a blank device (or any, with ``force``) is formatted."""
    if not sig:
        return "format"
    if sig.get("type") == "xfs" and sig.get("label") == BRICK_LABEL:
        return "adopt"
    if force:
        return "format"
    raise StorageError(
        f"brick device {device} carries {describe_signature(sig)}, not an XFS brick filesystem labelled "
        f"{BRICK_LABEL}; nothing was formatted or mounted. If that is the wrong disk, fix device; if its data may "
        "go, set force: true to format it (everything on it is lost)"
    )


def converge_brick(host):
    """Format (blank device only, unless force) and mount a brick filesystem with an fstab entry."""
    p = host.params
    what = f"brick filesystem {p['path']}"
    device = check_device(p["device"], what)
    path = check_path(p["path"], what, option="path")
    kernel = resolve_device(device)
    if kernel is None or not is_block_device(kernel):
        raise StorageError(f"{what}: device {device} is not present on host {host.hostname}: fix device")
    spec = MountSpec(device, "block", "xfs", BRICK_OPTS.split(","), kernel)
    current = mounted_at(host.mounts, path)
    if current is not None and resolve_device(current.source) != kernel:
        raise StorageError(
            f"{what}: {path} is already a mount point of {current.source} ({current.fstype}): fix path or device"
        )
    elsewhere = [
        m.mount_point
        for m in host.mounts
        if m.source.startswith("/dev/") and resolve_device(m.source) == kernel and m.mount_point != path
    ]
    if elsewhere:
        raise StorageError(f"{what}: device {device} ({kernel}) is mounted at {elsewhere[0]}: unmount it, or fix path")

    def edit(_before, _after, plan):
        if current is None:
            action = decide_brick(device, signature(host.runner, kernel, what), p["force"])
            if action == "format":
                plan.add(
                    f"format {device} ({kernel}) with XFS for a Gluster brick ({' '.join(mkfs_brick_argv(device, p['force']))})",
                    lambda: host.runner.run(mkfs_brick_argv(kernel, p["force"]), what),
                )
            plan.mkdirs(path)
        host.fstab.set(spec.entry(path))
        host.plan_fstab(plan)
        if current is None:
            _plan_mount(host, plan, spec, path, what)

    result, _after = host.transaction(edit)
    result["brick_filesystem"] = {"device": device, "kernel_name": kernel, "path": path}
    return result
