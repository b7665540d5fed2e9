# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OCFS2 volumes: one shared LUN, formatted once, mounted by every host of its storage. Private.

Phases (DESIGN section 4): every host reports what it sees at ``device`` (``identify``); the
action plugin compares the reports on the controller; the designated host, the first of the
image storage's declared hosts, formats a blank device (and only it, and only a blank one
unless ``force``); the other hosts wait, bounded, until the device carries the volume's label
and a finished format; then every host mounts it with an fstab entry, owned by the qemu user.

What is on the device is read in-process from its superblock (label, UUID, slots, features,
cluster stack), bounded in time because a shared LUN whose path is lost blocks every read;
the tools run only where nothing else tells: ``blkid -p`` (every signature, not only OCFS2),
``debugfs.ocfs2`` (slot map, a finished format), ``mounted.ocfs2 -f`` (who has it mounted),
``mkfs.ocfs2`` and ``tunefs.ocfs2 -N``.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import re
import struct
from dataclasses import dataclass

from . import _iscsi, _multipath, _probe
from ._blockdev import (
    READ_TIMEOUT,
    by_id_names,
    describe_signature,
    flush_buffers,
    identity,
    is_block_device,
    is_by_id,
    refuse_multipath_path,
    resolve_device,
    signature,
)
from ._errors import StorageError
from ._mounts import fstab_options, mounted_at
from ._plan import _NOTHING_TO_UNDO
from ._validate import check_mount_fields, check_name, check_path
from ._volumes import (
    PROBE_TIMEOUT,
    MountSpec,
    check_responsive,
    converge_volume,
    mount_and_verify,
    on_network_fs,
    plan_owner,
    plan_remount,
    remount_from,
)
from ._volumes import status as volume_status

DEFAULT_CLUSTER = "flexvdi"
DEFAULT_OPTS = "_netdev,noatime"
AFTER_O2CB = ("x-systemd.after=o2cb.service", "x-systemd.after=ocfs2.service")  # see mount_options
DEFAULT_FORMAT_TIMEOUT = 300
MAX_LABEL = 63  # mkfs.ocfs2: "Volume label too long: must be less than 64 characters"
MAX_SLOTS = 255  # mkfs.ocfs2 -N: 1 to 255
MKFS_TYPE = "vmstore"  # at least 2 GiB; 128 KiB clusters; refcount (reflinks) is a default feature
STACK = "o2cb"
CLUSTER_NAME_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")  # o2cb: at most 16 letters and digits
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]*$")
CONFIGFS_CLUSTERS = "/sys/kernel/config/cluster"

# The superblock: block 2 of the device, an ocfs2_dinode whose id2 (at 0xC0) is the
# ocfs2_super_block (fs/ocfs2/ocfs2_fs.h).
OCFS2_SIGNATURE = b"OCFSV2"
_SB = 0xC0
_SB_INCOMPAT = _SB + 0x20
_SB_MAX_SLOTS = _SB + 0x40
_SB_LABEL = _SB + 0x50
_SB_UUID = _SB + 0x90
_SB_STACK = _SB + 0xA0
_SB_CLUSTER = _SB + 0xA8
INCOMPAT_LOCAL_MOUNT = 0x0008
INCOMPAT_REFCOUNT_TREE = 0x1000
INCOMPAT_CLUSTERINFO = 0x4000
INCOMPAT_USERSPACE_STACK = 0x0080


# --- options -------------------------------------------------------------------------------


def default_label(storage_name, name):
    """``<storage>.<volume>``; past OCFS2's 63 characters, cut with a hash of the whole kept."""
    label = f"{storage_name}.{name}"
    if len(label) <= MAX_LABEL:
        return label
    digest = hashlib.sha1(f"{storage_name}/{name}".encode()).hexdigest()[:8]
    return label[: MAX_LABEL - 9] + "-" + digest


def default_slots(hosts):
    """One slot per host of the storage, plus one for a host added later without tunefs."""
    return min(len(hosts) + 1, MAX_SLOTS)


def check_label(label, what):
    if not isinstance(label, str) or len(label) > MAX_LABEL or not LABEL_RE.match(label):
        raise StorageError(
            f"{what}: label {label!r} is not a valid OCFS2 label: at most {MAX_LABEL} characters (mkfs.ocfs2's "
            "limit), letters, digits, '.', '_', ':', '+' and '-', starting with a letter or digit: fix label"
        )
    return label


def check_cluster_name(cluster_name, what):
    if not isinstance(cluster_name, str) or not CLUSTER_NAME_RE.match(cluster_name):
        raise StorageError(
            f"{what}: cluster_name {cluster_name!r} is not an o2cb cluster name: 1 to 16 letters and digits "
            "(o2cb's limit; the name is written on the disk and must be the cluster's in /etc/ocfs2/cluster.conf): "
            "fix cluster_name"
        )
    return cluster_name


def check_device(device, what):
    """``device`` must be a /dev/disk/by-id/ name: the same LUN has the same one on every host."""
    if not isinstance(device, str) or not device.startswith("/") or re.search(r"[\x00-\x1f\x7f]", device):
        raise StorageError(f"{what}: device {device!r} must be an absolute /dev/disk/by-id/ path: fix device")
    if is_by_id(device):
        return device
    names = by_id_names(device)
    hint = (
        "use one of its stable names: " + ", ".join(names)
        if names
        else "use the name the LUN has in /dev/disk/by-id (ls -l /dev/disk/by-id), the same on every host"
    )
    raise StorageError(
        f"{what}: device {device} is not a /dev/disk/by-id/ name; kernel names such as /dev/sdb change "
        f"between boots and differ between hosts, so every host must name the LUN by its id: {hint}: fix device"
    )


def check_slots(slots, hosts, what):
    if not isinstance(slots, int) or isinstance(slots, bool) or not 1 <= slots <= MAX_SLOTS:
        raise StorageError(f"{what}: slots {slots!r} must be a number from 1 to {MAX_SLOTS}: fix slots")
    if slots < len(hosts):
        raise StorageError(
            f"{what}: slots {slots} is fewer than the {len(hosts)} hosts of its image storage ({', '.join(hosts)}); "
            f"every host that mounts an OCFS2 volume takes a slot: set slots to at least {len(hosts)} "
            f"(the default is the number of hosts plus one)"
        )
    return slots


def mount_options(opts, what):
    """The mount options, with ``_netdev`` and the order after o2cb and ocfs2 always.

    An OCFS2 mount needs the network and the o2cb cluster online. At boot, systemd mounts
    ``_netdev`` entries once the network is online, which can be before o2cb.service has
    registered the cluster: mount.ocfs2 then fails ("Cluster name is invalid while trying to
    join the group"), and the mount unit and remote-fs.target fail (seen in the lab on a power
    cut). ocfs2.service, started after o2cb.service, mounts the OCFS2 lines of fstab itself:
    ordered only after o2cb, the mount unit raced it ("Internal logic failure"). Ordered after
    both, the mount is made once, by whichever runs first. mount(8) hands none of these
    options to the filesystem.
    """
    check_mount_fields(what, opts=opts, opts_option="mount_opts")
    options = fstab_options(opts)
    if "_netdev" not in options:
        options.insert(0, "_netdev")
    options += [option for option in AFTER_O2CB if option not in options]
    return options


# --- commands ------------------------------------------------------------------------------


def mkfs_argv(device, label, slots, cluster_name, dry_run=False):
    """The one mkfs.ocfs2 command line: quiet, for VM images, ``slots`` slots, o2cb cluster ``cluster_name``."""
    argv = ["mkfs.ocfs2", "-q", "-T", MKFS_TYPE, "-N", str(slots), "-L", label]
    argv += [f"--cluster-stack={STACK}", f"--cluster-name={cluster_name}"]
    if dry_run:
        argv.append("--dry-run")
    return argv + ["--", device]


def tunefs_slots_argv(device, slots):
    return ["tunefs.ocfs2", "-y", "-N", str(slots), device]


def read_superblock(device):
    """The OCFS2 superblock of ``device`` as a dict, or None when there is none.

    ``label``, ``uuid``, ``slots``, ``local`` (formatted with ``-M local``), ``refcount``
    (reflinks), ``stack`` ('' for classic o2cb without cluster info) and ``cluster``
    ('' when the disk names none). Read directly (O_DIRECT where the device allows it), so
    a format another host just wrote is seen, not this host's cached blocks.
    """
    for block_size in (512, 1024, 2048, 4096):
        data = _read_block(device, 2 * block_size, 512)
        if data is None:
            return None
        if data[: len(OCFS2_SIGNATURE)] == OCFS2_SIGNATURE:
            return parse_superblock(data)
    return None


def _read_block(device, offset, size):
    """``size`` bytes at ``offset`` of ``device``, read with O_DIRECT (page-aligned buffer) when possible."""
    aligned = offset - offset % 4096
    buf = mmap.mmap(-1, 4096)
    try:
        for flags in (os.O_DIRECT, 0):
            try:
                fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC | flags)
            except OSError:
                if flags:
                    continue
                return None
            try:
                got = os.preadv(fd, [buf], aligned)
            except OSError:
                if flags:
                    continue
                return None
            finally:
                os.close(fd)
            start = offset - aligned
            return bytes(buf[start : start + size]) if got >= start + size else None
        return None
    finally:
        buf.close()


def parse_superblock(data):
    """The fields we use from an OCFS2 superblock dinode (at least 512 bytes)."""
    (incompat,) = struct.unpack_from("<I", data, _SB_INCOMPAT)
    (slots,) = struct.unpack_from("<H", data, _SB_MAX_SLOTS)
    clusterinfo = bool(incompat & (INCOMPAT_CLUSTERINFO | INCOMPAT_USERSPACE_STACK))
    return {
        "label": _cstring(data[_SB_LABEL : _SB_LABEL + 64]),
        "uuid": data[_SB_UUID : _SB_UUID + 16].hex().upper(),
        "slots": slots,
        "local": bool(incompat & INCOMPAT_LOCAL_MOUNT),
        "refcount": bool(incompat & INCOMPAT_REFCOUNT_TREE),
        "stack": _cstring(data[_SB_STACK : _SB_STACK + 4]) if clusterinfo else "",
        "cluster": _cstring(data[_SB_CLUSTER : _SB_CLUSTER + 16]) if clusterinfo else "",
    }


def _cstring(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def superblock(host, device, what):
    """``read_superblock`` bounded in time (a lost path blocks the read), or a StorageError."""
    ok, value = _probe.bounded(read_superblock, device, timeout=PROBE_TIMEOUT)
    if not ok:
        reason = "did not answer within %d s" % PROBE_TIMEOUT if value == "timeout" else value
        raise StorageError(f"{what}: reading the superblock of {device} failed: {reason} (is the disk reachable?)")
    return value


def debugfs(runner, device, what):
    """The slot map and the root directory of ``device``, with one debugfs.ocfs2 (read-only)."""
    _rc, out, _err = runner.run(
        ["debugfs.ocfs2", "-f", "/dev/stdin", device], what, check=False, data="slotmap\nls -l /", timeout=READ_TIMEOUT
    )
    return parse_debugfs(out)


def parse_debugfs(text):
    """``{"slots_used": n, "root": [names]}`` from debugfs.ocfs2's answers to ``slotmap`` and ``ls -l /``."""
    sections, current = {}, None
    for line in text.splitlines():
        if line.startswith("debugfs: "):
            current = line[len("debugfs: ") :].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    used = sum(1 for line in sections.get("slotmap", []) if re.match(r"^\s*\d+\s+\d+\s*$", line))
    root = [line.split()[-1] for line in sections.get("ls -l /", []) if len(line.split()) >= 2]
    return {"slots_used": used if "slotmap" in sections else None, "root": root}


def mounted_nodes(runner, device, what):
    """The cluster's nodes that have ``device`` mounted (``mounted.ocfs2 -f``, from its heartbeat)."""
    _rc, out, _err = runner.run(["mounted.ocfs2", "-f", device], what, check=False, timeout=READ_TIMEOUT)
    return parse_mounted(out, device)


def parse_mounted(text, device):
    """Nodes of ``device`` in ``mounted.ocfs2 -f`` output (columns placed by its header), or None."""
    start = None
    for line in text.splitlines():
        if line.startswith("Device") and "Nodes" in line:
            start = line.index("Nodes")
            continue
        fields = line.split()
        if start is None or not fields or fields[0] != device:
            continue
        listed = line[start:].strip() if len(line) > start else ""
        if listed in ("", "Not mounted"):
            return []
        return [node.strip() for node in listed.split(",") if node.strip()]
    return None


def cluster_online(cluster_name):
    """Whether the o2cb cluster ``cluster_name`` is registered with this host's kernel (configfs)."""
    return os.path.isdir(os.path.join(CONFIGFS_CLUSTERS, cluster_name))


# --- undoing a failed format ----------------------------------------------------------------
#
# mkfs.ocfs2 first discards the whole device (BLKDISCARD), zeroes its first and last MiB
# (clear_both_ends), writes bitmaps, system files and journals, then the superblock (block 2),
# then the backup superblocks and the rest through libocfs2 (mkfs.ocfs2/mkfs.c, main() and
# finish_normal_format()). It can fail after writing: here, without o2cb, it exits 1 while a
# child it forked to run modprobe goes on and writes a whole format, so blkid then reads
# TYPE=ocfs2 with our label. Before a blank device is formatted, the areas where anything
# looks for a signature are saved, and put back if mkfs.ocfs2 fails:
# - its first and last UNDO_EDGE bytes: every signature libblkid probes (the furthest from an
#   end is VMFS at 2 MiB, UDF's anchor at sector 512 of 4 KiB blocks, ZFS's last labels
#   512 KiB before the end, md and GPT at the end), the OCFS2 superblock (1 to 8 KiB) and
#   what clear_both_ends zeroes;
# - UNDO_AT_BACKUP bytes at each OCFS2 backup superblock (1 GiB << 2i, i < 6: 1G, 4G, 16G,
#   64G, 256G, 1T; ocfs2_backup_super_blkno() in ocfs2_fs.h) inside the device, which
#   fsck.ocfs2 and tunefs.ocfs2 would find.
# Journals and allocators in between are left as mkfs.ocfs2 wrote them (hundreds of MiB),
# like what it discarded: nothing reads a signature there. The device was blank, so what the
# undo gives back is a device that every probe sees blank again.

UNDO_EDGE = 16 * 2**20
UNDO_AT_BACKUP = 2**20
BACKUP_SUPERBLOCKS = tuple((2**30) << (2 * i) for i in range(6))
_CHUNK = 2**20


def undo_regions(size):
    """The ``(offset, length)`` areas of a device of ``size`` bytes saved before a format, sorted, merged."""
    wanted = [(0, UNDO_EDGE), (size - UNDO_EDGE, UNDO_EDGE)]
    wanted += [(offset, UNDO_AT_BACKUP) for offset in BACKUP_SUPERBLOCKS]
    merged = []
    for offset, length in sorted(wanted):
        start, end = max(offset, 0), min(offset + length, size)
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end - start) for start, end in merged]


def save_regions(path):
    """``{"size": bytes, "regions": [(offset, data)]}``: what ``path`` holds in its ``undo_regions``.

    Read through the page cache: the caller flushes this host's cached blocks first
    (``flush_buffers``), as it does before every probe of a shared LUN.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        regions = []
        for offset, length in undo_regions(size):
            parts, at = [], offset
            while at < offset + length:
                chunk = os.pread(fd, min(_CHUNK, offset + length - at), at)
                if not chunk:
                    raise OSError(errno.EIO, f"{path} ended at byte {at}, before its size {size}")
                parts.append(chunk)
                at += len(chunk)
            regions.append((offset, b"".join(parts)))
        return {"size": size, "regions": regions}
    finally:
        os.close(fd)


def restore_regions(path, saved):
    """Write what ``save_regions`` read back into ``path``, then fsync it.

    A block device is opened exclusively (O_EXCL): one mounted, or held by another exclusive
    user, since it was saved fails with EBUSY instead of being written under its user. One
    whose size changed since is not written at all (the areas at its end moved).
    """
    flags = os.O_WRONLY | os.O_CLOEXEC
    if is_block_device(path):
        flags |= os.O_EXCL
    fd = os.open(path, flags)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        if size != saved["size"]:
            raise OSError(errno.EINVAL, f"its size changed from {saved['size']} to {size} bytes; nothing was written")
        for offset, data in saved["regions"]:
            view, at = memoryview(data), offset
            while view:
                written = os.pwrite(fd, view[:_CHUNK], at)
                view, at = view[written:], at + written
        os.fsync(fd)
    finally:
        os.close(fd)


# --- deciding what a host does -------------------------------------------------------------


@dataclass
class Decision:
    action: str  # adopt, format, wait or refuse
    reason: str = ""
    grow: bool = False  # adopt, after adding slots (tunefs.ocfs2 -N) on the designated host
    local: bool = False  # the device is formatted for one host (mkfs.ocfs2 -M local): no cluster needed
    blank: bool = False  # format: blkid -p found no signature, so a failed format is undone (save_regions)


def decide(device, sig, sb, complete, want, hosts, me, mounted_here, force, grow_slots):
    """What this host does with ``device`` given what it carries; a pure function of what was read.

    ``sig``: ``blkid -p``; ``sb``: its OCFS2 superblock or None; ``complete``: whether the
    format finished (lost+found in its root), None if not read; ``want``: {label, slots,
    cluster_name}. Only ``hosts[0]`` (the designated host) ever formats or adds slots.
    """
    designated = hosts[0]
    label, cluster_name = want["label"], want["cluster_name"]
    is_designated = me == designated
    ours = sig.get("type") == "ocfs2" and sig.get("label") == label
    if not sig:
        if is_designated:
            return Decision("format", f"{device} is blank", blank=True)
        return Decision("wait", f"{device} is blank; {designated} formats it")
    if not ours:
        carries = describe_signature(sig)
        if not force:
            return Decision(
                "refuse",
                f"device {device} carries {carries}, not an OCFS2 filesystem labelled {label}; nothing was "
                f"formatted or mounted. If that is the wrong disk, fix device; if its data may go, set force: true "
                f"to have {designated} format it (everything on it is lost)",
            )
        if is_designated:
            return Decision("format", f"force: true: {device} carries {carries}, which is formatted over")
        return Decision("wait", f"{device} carries {carries}; with force: true {designated} formats it")
    if sb is None:
        return Decision("refuse", f"blkid says {device} is OCFS2 labelled {label}, but its superblock cannot be read")
    if sb["local"] and len(hosts) > 1:
        return Decision(
            "refuse",
            f"device {device} is OCFS2 labelled {label} but formatted for one host only (mkfs.ocfs2 -M local), and "
            f"the image storage has {len(hosts)} hosts: mounting it from two would corrupt it. Convert it where the "
            f"o2cb cluster {cluster_name} is online (tunefs.ocfs2 -M cluster {device}), or move its data away and "
            "wipe it (wipefs -a) for a new format",
        )
    if sb["stack"] and sb["stack"] != STACK:
        return Decision(
            "refuse",
            f"device {device} is OCFS2 labelled {label} for the {sb['stack']} cluster stack; this collection runs "
            f"o2cb: move it to o2cb (tunefs.ocfs2 --update-cluster-stack where o2cb is online) or fix device",
        )
    if sb["cluster"] and sb["cluster"] != cluster_name:
        return Decision(
            "refuse",
            f"device {device} is OCFS2 labelled {label} for the o2cb cluster {sb['cluster']}, not {cluster_name}: "
            f"set cluster_name to {sb['cluster']} (the cluster in /etc/ocfs2/cluster.conf must be that one), "
            "or fix device",
        )
    if not mounted_here and complete is False:
        if is_designated:
            return Decision(
                "refuse",
                f"device {device} is OCFS2 labelled {label}, but its format never finished (no lost+found in its "
                "root: mkfs.ocfs2 was interrupted?). A volume labelled as ours is never formatted again: if it holds "
                f"nothing, wipe it (wipefs -a {device}) and run again; if lost+found was deleted, fsck.ocfs2 "
                "recreates it",
            )
        return Decision("wait", f"{device} is being formatted by {designated}")
    if sb["slots"] < len(hosts):
        needed = max(want["slots"], len(hosts))
        command = " ".join(tunefs_slots_argv(device, needed))
        if not grow_slots:
            return Decision(
                "refuse",
                f"device {device} has {sb['slots']} slots and image storage has {len(hosts)} hosts "
                f"({', '.join(hosts)}); every host that mounts it takes one. Add slots while it is mounted on no "
                f"host: run `{command}` on {designated}, or set grow_slots: true to have {designated} run it",
            )
        if mounted_here:
            return Decision(
                "refuse",
                f"device {device} has {sb['slots']} slots for {len(hosts)} hosts, and grow_slots: true adds them "
                f"with `{command}`, which works only while the volume is mounted on no host: stop its guests, "
                "unmount it everywhere (state: absent keeps the data) and run again",
            )
        if is_designated:
            return Decision("adopt", f"{device} has {sb['slots']} slots; adding up to {needed}", grow=True)
        return Decision("wait", f"{device} has {sb['slots']} slots; {designated} adds them")
    return Decision("adopt", f"{device} is OCFS2 labelled {label}", local=sb["local"])


# --- the module ----------------------------------------------------------------------------


def converge(host):
    p = host.params
    what = "OCFS2 volume {} of image storage {}".format(p["name"], p["image_storage"])
    if p["identify"]:
        return identify(host, what)
    if p["state"] == "present":
        check_device(p["device"], what)
        if p["label"] is not None:
            check_label(p["label"], what)
        check_cluster_name(p["cluster_name"], what)
        if p["format_timeout"] < 0:
            raise StorageError(
                f"{what}: format_timeout {p['format_timeout']} must be 0 or more seconds: fix format_timeout"
            )

    def mount_point_of(storage):
        wanted = p["mount_point"] or os.path.join(storage.get("root") or "/", p["name"])
        return check_path(wanted, what, resolve=not on_network_fs(host, wanted))

    return converge_volume(host, "ocfs2", what, mount_point_of, plan_present, status)


def identify(host, what):
    """This host's view of ``device``, for the controller to compare across hosts. Reads only."""
    p = host.params
    check_name(p["image_storage"], "image_storage")
    check_name(p["name"], "name")
    check_device(p["device"], what)
    label = check_label(p["label"], what) if p["label"] is not None else default_label(p["image_storage"], p["name"])
    storage = host.registry.load()["image_storages"].get(p["image_storage"])
    kernel = resolve_device(p["device"])
    if kernel is not None and is_block_device(kernel):
        refuse_multipath_path(p["device"], kernel, what)
    if kernel is not None and is_block_device(kernel) and not _mounted_anywhere(host, kernel):
        flush_buffers(kernel)
    found = identity(host.runner, p["device"], what)
    found.update(
        host=host.hostname,
        image_storage=p["image_storage"],
        name=p["name"],
        label=label,
        hosts=storage.get("hosts") if storage else None,
    )
    return {"changed": False, "actions": [], "identity": found}


def check_failover(host, kernel, cluster_name, what, sysfs="/sys", configfs="/sys/kernel/config"):
    """On a multipath map over iSCSI, refuse a live configuration whose path failover outlasts o2cb's
    dead time: each path's session (recovery_tmo, its connection's NOP-Out interval and timeout) against
    the running cluster's heartbeat dead_threshold, with multipath.conf's polling_interval. Reads sysfs,
    configfs and multipath.conf only; says nothing where any of them is missing (no o2cb yet, no iSCSI)."""
    wwid = _multipath.map_wwid(kernel, sysfs)
    if wwid is None:
        return
    threshold = _read_int(os.path.join(configfs, "cluster", cluster_name, "heartbeat", "dead_threshold"))
    if threshold is None:
        return
    paths = {p["name"] for p in _multipath.maps(sysfs).get(wwid, {}).get("paths", [])}
    sessions = [s for s in _iscsi.sessions(sysfs) if any(d["name"] in paths for d in s["disks"])]
    if not sessions:
        return
    try:
        with open(_multipath.CONF, encoding="utf-8") as handle:
            polling = int(_multipath.conf_settings(handle.read()).get("polling_interval", 5))
    except (OSError, ValueError):
        polling = 5
    worst = max(
        _iscsi.failover_seconds(s["recv_tmo"] or 0, s["ping_tmo"] or 0, s["recovery_tmo"] or 0, polling)
        for s in sessions
    )
    _iscsi.check_failover(
        worst,
        threshold,
        f"{what}: on this host the LUN {wwid}'s sessions",
        "Nothing was mounted: raise ocfs2_cluster_heartbeat_threshold to at least {needed} (o2cb takes it when it "
        "restarts on every node), or lower san_client_replacement_timeout and the NOP-Out timeouts and converge the "
        "SAN (role san_client)",
    )


def _read_int(path):
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _mounted_anywhere(host, kernel):
    return [m for m in host.mounts if m.source.startswith("/dev/") and resolve_device(m.source) == kernel]


def plan_present(host, plan, storage, existing, mount_point, what):
    """Format (designated host, blank device) or wait, then mkdir, fstab, mount, owner; the record."""
    p = host.params
    hosts = list(storage.get("hosts") or [host.hostname])
    me = host.hostname
    device = p["device"]
    label = p["label"] or default_label(p["image_storage"], p["name"])
    slots = check_slots(p["slots"] if p["slots"] is not None else default_slots(hosts), hosts, what)
    want = {"label": label, "slots": slots, "cluster_name": p["cluster_name"]}
    spec = MountSpec(device, "block", "ocfs2", mount_options(p["mount_opts"], what))
    kernel = resolve_device(device)
    if kernel is None or not is_block_device(kernel):
        raise StorageError(
            f"{what}: device {device} is not present on host {me} (LUN not mapped to this host, path down, or a typo "
            "in device); nothing was formatted or mounted: fix the LUN mapping or device"
        )
    refuse_multipath_path(device, kernel, what)
    check_failover(host, kernel, p["cluster_name"], what)
    spec.device = kernel
    check_responsive(host, mount_point, what)
    current = mounted_at(host.mounts, mount_point)
    if current is not None and resolve_device(current.source) != kernel:
        raise StorageError(
            f"{what}: mount_point {mount_point} is already a mount point of {current.source} ({current.fstype}) on "
            f"host {me}: unmount it, or choose another mount_point"
        )
    elsewhere = [m.mount_point for m in _mounted_anywhere(host, kernel) if m.mount_point != mount_point]
    if elsewhere:
        raise StorageError(
            f"{what}: device {device} ({kernel}) is already mounted on host {me} at {elsewhere[0]}: unmount it "
            "there, or set mount_point to it"
        )
    mounted_here = current is not None
    if os.path.lexists(mount_point) and not os.path.isdir(mount_point):
        raise StorageError(f"{what}: mount_point {mount_point} exists and is not a directory: fix mount_point")

    decision = _assess(host, device, kernel, want, hosts, mounted_here, what)
    if decision.action == "refuse":
        raise StorageError(f"{what}: {decision.reason}")
    if decision.action == "format" and host.stage != "converge":
        _plan_format(host, plan, device, kernel, want, hosts, what, decision.blank)
    elif decision.action in ("format", "wait"):
        # In the converge phase nobody formats: the create phase did, on the first host.
        _plan_wait(host, plan, device, kernel, want, hosts, what)
    elif decision.grow:
        needed = max(slots, len(hosts))
        plan.add(
            f"add slots to {device} ({kernel}) for {len(hosts)} hosts: {' '.join(tunefs_slots_argv(device, needed))}",
            lambda: host.runner.run(tunefs_slots_argv(kernel, needed), what),
        )
    if host.stage == "create":
        return None  # the create phase formats (first host only); mounting is the converge phase's
    if not mounted_here:
        plan.mkdirs(mount_point)
    old_options = remount_from(existing, host.fstab.find(mount_point), spec)
    host.fstab.set(spec.entry(mount_point))
    host.plan_fstab(plan)
    if not mounted_here:
        _plan_mount(host, plan, spec, mount_point, None if decision.local else want["cluster_name"], what)
    elif old_options is not None:
        plan_remount(host, plan, spec, old_options, mount_point, what, p["force"])
    plan_owner(host, plan, mount_point, settled=mounted_here)
    return {
        "type": "ocfs2",
        "mount_point": mount_point,
        "src": device,
        "kind": "block",
        "fstype": "ocfs2",
        "opts": spec.options,
        "owner_qemu": True,
        "label": label,
        "cluster_name": p["cluster_name"],
        "slots": slots,
    }


def _assess(host, device, kernel, want, hosts, mounted_here, what):
    """Read what ``device`` carries and decide. Mounted here (the no-op path): the superblock only,
    in-process; otherwise ``blkid -p`` (every signature), and for our label whether the format finished."""
    p = host.params
    sb = complete = None
    if mounted_here:
        sb = superblock(host, kernel, what)
    if sb is not None:
        sig = {"type": "ocfs2", "label": sb["label"]}
    else:
        if not mounted_here:
            flush_buffers(kernel)
        sig = signature(host.runner, kernel, what)
        if sig.get("type") == "ocfs2":
            sb = superblock(host, kernel, what)
            if sb is not None and sig.get("label") == want["label"] and not mounted_here:
                complete = "lost+found" in debugfs(host.runner, kernel, what)["root"]
    return decide(device, sig, sb, complete, want, hosts, host.hostname, mounted_here, p["force"], p["grow_slots"])


def _plan_format(host, plan, device, kernel, want, hosts, what, blank):
    """The format, preceded on a blank device by the save that undoes it should mkfs.ocfs2 fail.

    Refused, in check mode too and before anything is written, when mkfs.ocfs2 refuses the
    arguments (its dry run) or the o2cb cluster is not online on this host.
    """
    p = host.params
    if len(hosts) > 1 and not p["identified_by"]:
        raise StorageError(
            f"{what}: refusing to format {device}: image storage has {len(hosts)} hosts ({', '.join(hosts)}) and "
            "what each sees at that name was not compared: run this module with identify: true on every host first, "
            "register the result and name that variable in identified_by (the flexvdi.storage.storage role does both)"
        )
    # mkfs.ocfs2 itself checks its arguments against the device (size for vmstore, label,
    # cluster name) without writing: the plan fails now, in check mode too, rather than later.
    rc, out, err = host.runner.run(
        mkfs_argv(kernel, want["label"], want["slots"], want["cluster_name"], dry_run=True), what, check=False
    )
    if rc != 0:
        detail = "; ".join(
            line.strip() for line in (err or out).splitlines() if line.strip() and line.strip() != "Dry run"
        )
        raise StorageError(f"{what}: mkfs.ocfs2 refuses to format {device} ({kernel}): {detail or 'rc=%d' % rc}")
    cluster = want["cluster_name"]
    if not cluster_online(cluster) and host.check_mode:
        # An earlier task of the same play (the ocfs2_cluster role, in site.yml) starts o2cb in a real
        # run, which check mode cannot see: a warning here; the real run refuses if it is still offline.
        plan.warnings.append(
            f"{what}: check mode: the o2cb cluster {cluster} is not online on host {host.hostname} yet; the real "
            f"run formats {device} only once it is (the flexvdi.storage.ocfs2_cluster role starts it)"
        )
    elif not cluster_online(cluster):
        raise StorageError(
            f"{what}: refusing to format {device} ({kernel}): the o2cb cluster {cluster} is not online on host "
            f"{host.hostname} (no {CONFIGFS_CLUSTERS}/{cluster}), and an OCFS2 volume for it can be neither "
            "formatted safely nor mounted without it; nothing was written. Bring the cluster online first: run the "
            f"flexvdi.storage.ocfs2_cluster role on the image storage's hosts (or start o2cb where "
            f"/etc/ocfs2/cluster.conf names cluster {cluster}: systemctl start o2cb), then run again"
        )
    argv = mkfs_argv(kernel, want["label"], want["slots"], cluster)
    # The only prompt of mkfs.ocfs2 asks to overwrite an existing OCFS2: answered yes only under force.
    answer = "y" if p["force"] else None
    save_step = _plan_save(host, plan, device, kernel, what) if blank else None

    def do():
        host.runner.run(argv, what, data=answer)
        if save_step is not None:
            # A finished format stays when a later step fails (it has no undo, and the failure
            # says so): the other hosts wait for it and mount it as soon as it is finished, so
            # unmaking it would pull it from under them; the next run adopts it.
            save_step.undo = _NOTHING_TO_UNDO

    plan.add(
        f"format {device} ({kernel}) with OCFS2: label {want['label']}, {want['slots']} slots, o2cb cluster "
        f"{cluster} ({' '.join(mkfs_argv(device, want['label'], want['slots'], cluster))})",
        do,
    )


def _plan_save(host, plan, device, kernel, what):
    """The step before the format of a blank device: save the areas mkfs.ocfs2 would leave a signature in.

    Its undo, run by Plan.apply when mkfs.ocfs2 fails, puts them back and proves with
    ``blkid -p`` that the device is blank again; the format's success disarms it.
    """
    saved = {}

    def save():
        flush_buffers(kernel)
        found = signature(host.runner, kernel, what)
        if found:
            raise StorageError(
                f"{what}: {device} ({kernel}) is no longer blank: blkid -p now reads {describe_signature(found)} on "
                "it; nothing was written. Look at who wrote it, then run again"
            )
        saved.update(save_regions(kernel))

    def put_back():
        if not saved:
            return
        try:
            restore_regions(kernel, saved)
        except OSError as exc:
            raise StorageError(
                f"{device} ({kernel}) may carry a half-made OCFS2 filesystem: putting back what was saved before "
                f"mkfs.ocfs2 failed ({exc.strerror or exc}). Make sure no host uses it, then wipe it "
                f"(wipefs -a {device}) and run again"
            ) from exc
        finally:
            saved.clear()
        flush_buffers(kernel)
        try:
            found = signature(host.runner, kernel, what)
        except StorageError as exc:
            raise StorageError(
                f"{device} ({kernel}) was put back as saved, but cannot be proved blank again: {exc.msg}. "
                f"Read it with blkid -p {device}; if it shows OCFS2, wipe it (wipefs -a {device}) and run again"
            ) from exc
        if found:
            raise StorageError(
                f"{device} ({kernel}) is NOT blank again: after putting back what was saved before mkfs.ocfs2, "
                f"blkid -p still reads {describe_signature(found)} on it. Make sure no host uses it, then wipe it "
                f"(wipefs -a {device}) and run again"
            )

    plan.add(
        f"save the first and last {UNDO_EDGE // 2**20} MiB of blank {device} ({kernel}) and its OCFS2 backup "
        "superblock places, to put them back should the format fail",
        save,
        put_back,
    )
    return plan.actions[-1]


def _plan_wait(host, plan, device, kernel, want, hosts, what):
    def ready():
        decision = _assess(host, device, kernel, want, hosts, False, what)
        if decision.action == "refuse":
            raise StorageError(decision.reason)
        return None if decision.action == "adopt" and not decision.grow else decision.reason

    host.await_peer(
        plan,
        host.params["image_storage"],
        hosts[0],
        f"format {device} (OCFS2 labelled {want['label']})",
        host.params["format_timeout"],
        ready,
    )


def _plan_mount(host, plan, spec, mount_point, cluster_name, what):
    def do():
        try:
            mount_and_verify(host, spec, mount_point, what)
        except StorageError as exc:
            if cluster_name is None or cluster_online(cluster_name):
                raise
            raise StorageError(
                f"{exc.msg}; the o2cb cluster {cluster_name} is not online on this host (no "
                f"{CONFIGFS_CLUSTERS}/{cluster_name}): set it up first (role flexvdi.storage.ocfs2_cluster)"
            ) from exc

    def undo():
        host.runner.umount(mount_point, what)
        host.forget_mounts()

    plan.add(f"mount {spec.src} on {mount_point} ({spec.fstype}, {spec.options})", do, undo)


# --- status --------------------------------------------------------------------------------


def status(host, storage_name, name, record, probe_fs=True, write=False):
    """The details view of a volume plus what its device tells: label, UUID, slots, nodes."""
    info = volume_status(host, storage_name, name, record, probe_fs=probe_fs, write=write)
    device = record.get("src")
    kernel = resolve_device(device) if device else None
    info.update(
        device=device,
        kernel_name=kernel,
        label=record.get("label"),
        cluster_name=record.get("cluster_name"),
        uuid=None,
        mount_type=None,
        slots=None,
        slots_used=None,
        nodes=None,
    )
    if not probe_fs or kernel is None or not is_block_device(kernel):
        return info
    what = f"OCFS2 volume {name} of image storage {storage_name}"
    try:
        sb = superblock(host, kernel, what)
        if sb is not None:
            info.update(
                label=sb["label"],
                uuid=sb["uuid"],
                slots=sb["slots"],
                mount_type="local" if sb["local"] else "cluster",
                cluster_name=sb["cluster"] or info["cluster_name"],
            )
            info["slots_used"] = debugfs(host.runner, kernel, what)["slots_used"]
            info["nodes"] = mounted_nodes(host.runner, kernel, what)
    except StorageError as exc:
        info["message"] = "; ".join(m for m in (info["message"], exc.msg) if m)
    return info
