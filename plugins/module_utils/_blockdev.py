# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Block devices: what they are, where they come from, what they carry. Private to the collection.

The one module that knows block devices: resolution of a device spec to its kernel node,
stable names (/dev/disk/by-id), identity read from sysfs (WWN, serial, size, partition or
whole disk), the transport (network or local), and signatures (``blkid -p``, one command for
type, label, UUID and partition table). Everything but ``signature()`` reads files in-process.
"""

from __future__ import annotations

import fcntl
import os
import stat

from . import _multipath
from ._errors import StorageError
from ._fileio import read_value

BY_ID = "/dev/disk/by-id"
# Transports whose disks appear only once the network is up: mounts from them need _netdev.
_NETWORK_NAME_PREFIXES = ("nbd", "rbd", "drbd")
BLKFLSBUF = 0x1261  # _IO(0x12, 97): write back and drop the buffer cache of a block device
# Seconds a command reading a disk may take: a lost SAN path blocks reads forever.
READ_TIMEOUT = 30


def is_block_device(path):
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def resolve_device(spec):
    """The /dev node a block device spec names (path, UUID=, LABEL=, PARTUUID=), or None."""
    for tag, folder in (("UUID=", "by-uuid"), ("LABEL=", "by-label"), ("PARTUUID=", "by-partuuid")):
        if spec.startswith(tag):
            spec = os.path.join("/dev/disk", folder, spec[len(tag) :].strip('"'))
            break
    if spec.startswith("/") and os.path.exists(spec):
        return os.path.realpath(spec)
    return None


def sysfs_path(device):
    """The /sys/devices path of a block device node (partition or disk), or None."""
    try:
        st = os.stat(device)
    except OSError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    link = "/sys/dev/block/%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    return os.path.realpath(link) if os.path.exists(link) else None


def is_network_block(device):
    """Whether ``device`` reaches its data over the network (iSCSI, NBD, RBD, DRBD)."""
    path = sysfs_path(device)
    if path is None:
        return False
    name = os.path.basename(path)
    if name.startswith(_NETWORK_NAME_PREFIXES):
        return True
    # An iSCSI disk sits below its session in sysfs: .../hostN/sessionM/targetN:0:0/...
    return any(part.startswith("session") for part in path.split("/"))


# --- stable names and identity ---------------------------------------------------------------


def is_by_id(path):
    """Whether ``path`` is a name directly in /dev/disk/by-id (the names udev derives from the disk)."""
    if not isinstance(path, str) or not path.startswith(BY_ID + "/"):
        return False
    name = path[len(BY_ID) + 1 :]
    return bool(name) and "/" not in name and name not in (".", "..")


def by_id_names(device, directory=BY_ID):
    """Every /dev/disk/by-id name of ``device`` (whatever name it is given by), sorted."""
    target = resolve_device(device) if device else None
    if target is None:
        return []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(
        os.path.join(directory, name) for name in names if os.path.realpath(os.path.join(directory, name)) == target
    )


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _text(path):
    """A sysfs value, or '' when there is none (read_value's None)."""
    return read_value(path) or ""


def _vpd_serial(disk_dir):
    """The unit serial number of SCSI VPD page 0x80 (iSCSI and SAN LUNs), or ''."""
    page = _read(os.path.join(disk_dir, "device", "vpd_pg80"))
    if not page or len(page) < 4:
        return ""
    length = int.from_bytes(page[2:4], "big")
    return page[4 : 4 + length].decode("ascii", "replace").strip()


def disk_dir(device):
    """The sysfs directory of the whole disk holding ``device`` (itself when it is a disk), or None."""
    path = sysfs_path(device)
    if path is None:
        return None
    return os.path.dirname(path) if os.path.exists(os.path.join(path, "partition")) else path


def is_partition(device):
    path = sysfs_path(device)
    return path is not None and os.path.exists(os.path.join(path, "partition"))


def identity(runner, device, what):
    """How this host sees ``device``: the facts other hosts must see alike to share it.

    ``present`` and ``block`` (it exists and is a block device), ``kernel_name`` (the node it
    resolves to here, /dev/sdb), ``partition``, ``wwn`` and ``serial`` (sysfs; '' when the
    transport gives none), ``by_id`` (every /dev/disk/by-id name of it), ``size`` in bytes
    and ``signature`` (see ``signature()``). Only the signature runs a command.
    """
    found = sysfs_identity(device)
    if found["block"]:
        found["signature"] = signature(runner, found["kernel_name"], what)
    return found


def sysfs_identity(device):
    """``identity()`` without the signature (``{}``): read in-process, no command runs."""
    kernel_name = resolve_device(device)
    block = kernel_name is not None and is_block_device(kernel_name)
    found = {
        "device": device,
        "present": kernel_name is not None,
        "block": block,
        "kernel_name": kernel_name,
        "partition": False,
        "wwn": "",
        "serial": "",
        "by_id": [],
        "size": None,
        "signature": {},
    }
    if not block:
        return found
    node = sysfs_path(kernel_name)
    disk = disk_dir(kernel_name)
    found["partition"] = node is not None and node != disk
    if disk is not None:
        found["wwn"] = _text(os.path.join(disk, "device", "wwid")) or _text(os.path.join(disk, "wwid"))
        found["serial"] = (
            _text(os.path.join(disk, "device", "serial")) or _text(os.path.join(disk, "serial")) or _vpd_serial(disk)
        )
    if node is not None:
        sectors = _text(os.path.join(node, "size"))
        found["size"] = int(sectors) * 512 if sectors.isdigit() else None
    found["by_id"] = by_id_names(kernel_name)
    if not found["wwn"]:
        # A multipath map: its identity is the LUN's WWID (dm/uuid mpath-<wwid>), the same on every host.
        found["wwn"] = _multipath.map_wwid(os.path.basename(disk or "")) or ""
    if not found["wwn"]:
        wwn_names = [os.path.basename(n)[4:] for n in found["by_id"] if os.path.basename(n).startswith("wwn-")]
        found["wwn"] = wwn_names[0].split("-part")[0] if wwn_names else ""
    return found


def refuse_multipath_path(device, kernel, what, option="device"):
    """A StorageError when ``kernel`` (or the disk of the partition ``kernel``) is one path of a LUN that
    dm-multipath holds as a map: a filesystem on one path is cut off when that path fails (and OCFS2 fences
    the host), so the map is the device to use. Read from sysfs (holders, dm/uuid), in-process."""
    disk = disk_dir(kernel)
    if disk is None:
        return
    wwid = _multipath.holder_map(os.path.basename(disk))
    if wwid is None:
        return
    raise StorageError(
        f"{what}: {option} {device} ({kernel}) is one path of LUN {wwid}, which this host reaches through the "
        f"multipath map {_multipath.map_device(wwid)}: a filesystem on one path is cut off when that path fails "
        f"(OCFS2 then fences the host). Nothing was changed: set {option} to {_multipath.map_device(wwid)}"
    )


def model(device):
    """The disk's model (vendor and model from sysfs, blanks squeezed), '' when unknown (loop, virtio)."""
    disk = disk_dir(device)
    if disk is None:
        return ""
    words = [_text(os.path.join(disk, "device", key)) for key in ("vendor", "model")]
    return " ".join(" ".join(w for w in words if w).split())


def partitions(device):
    """The kernel names of the partitions of the whole disk ``device`` (/dev/sdb1...), sorted."""
    path = sysfs_path(device)
    if path is None:
        return []
    try:
        names = os.listdir(path)
    except OSError:
        return []
    return sorted("/dev/" + n for n in names if os.path.exists(os.path.join(path, n, "partition")))


def holders(device):
    """What the kernel has stacked on ``device`` or its partitions (device-mapper, md): kernel names."""
    found = []
    for node in [device] + partitions(device):
        path = sysfs_path(node)
        try:
            found += ["/dev/" + n for n in os.listdir(os.path.join(path, "holders"))] if path else []
        except OSError:
            continue
    return sorted(set(found))


def udev_match(device):
    """The sysfs attribute a udev rule can recognise the whole disk ``device`` by at every boot.

    ``(key, value)``: ``("ATTRS{wwid}", wwid)`` when the disk or its device has a WWN,
    else ``("ATTRS{serial}", serial)`` when one has a serial number, else for a device-mapper
    map with a UUID (a multipath map: ``mpath-<wwid>``, the same on every host and boot)
    ``("ENV{DM_UUID}", uuid)``, which udev's own dm rules set before the collection's, else for a loop device
    ``("ATTR{loop/backing_file}", file)`` (a loop device has neither; the file behind it is
    what it is, and it keeps its name across reboots where the loop number does not). None
    when the disk has nothing stable: its kernel name may be another disk's after a reboot.
    """
    disk = disk_dir(device)
    if disk is None:
        return None
    for attribute in ("wwid", "serial"):
        for path in (os.path.join(disk, attribute), os.path.join(disk, "device", attribute)):
            value = _text(path)
            if value:
                return "ATTRS{%s}" % attribute, value
    uuid = _text(os.path.join(disk, "dm", "uuid"))
    if uuid:
        return "ENV{DM_UUID}", uuid
    backing = loop_backing_file(device)
    if backing and not backing.endswith("(deleted)"):
        return "ATTR{loop/backing_file}", backing
    return None


def loop_backing_file(device):
    """The file behind the loop device ``device``, '' for any other device (or a detached loop)."""
    path = sysfs_path(device)
    if path is None or not os.path.basename(path).startswith("loop"):
        return ""
    return _text(os.path.join(path, "loop", "backing_file"))


# --- what a device carries -----------------------------------------------------------------

_EXPORT_KEYS = {"TYPE": "type", "LABEL": "label", "UUID": "uuid", "PTTYPE": "pttype", "USAGE": "usage"}


def parse_blkid_export(text):
    """``blkid -o export`` output as {type, label, uuid, pttype, usage} (only the keys present)."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in _EXPORT_KEYS:
            found[_EXPORT_KEYS[key]] = value
    return found


def signature(runner, device, what):
    """Every signature on ``device``, as ``wipefs -n`` would see it, read with ONE ``blkid -p``.

    ``{}``: the device is blank. Otherwise the keys present among ``type`` (filesystem,
    swap, RAID or LVM member...), ``label``, ``uuid``, ``pttype`` (a partition table) and
    ``usage``; ``ambivalent: True`` when blkid found several signatures it cannot choose
    between. Low-level probing (``-p``) reads the device itself, never the blkid cache.
    """
    rc, out, err = runner.run(["blkid", "-p", "-o", "export", "--", device], what, check=False, timeout=READ_TIMEOUT)
    if rc == 0:
        return parse_blkid_export(out)
    if rc == 2:  # nothing found
        return {}
    if rc == 8:  # ambivalent probing result
        return {"ambivalent": True}
    detail = (err or out or "").strip() or "no output"
    raise StorageError(f"{what}: blkid -p {device} failed (rc={rc}): {detail}")


def fs_type(runner, device, what):
    """The filesystem (or other) signature type of ``device``, '' when none."""
    return signature(runner, device, what).get("type", "")


def describe_signature(sig):
    """A signature in words: 'ext4 labelled data (UUID ...)', 'a gpt partition table'..."""
    if not sig:
        return "nothing (blank)"
    if sig.get("ambivalent"):
        return "several signatures (blkid -p cannot tell which)"
    if sig.get("type"):
        words = sig["type"]
        if sig.get("label"):
            words += f" labelled {sig['label']}"
        if sig.get("uuid"):
            words += f" (UUID {sig['uuid']})"
        return words
    if sig.get("pttype"):
        return f"a {sig['pttype']} partition table"
    return "an unknown signature"


def flush_buffers(device):
    """Drop this host's cached blocks of ``device`` (BLKFLSBUF), so the next read sees the disk.

    A shared LUN written by another host is read from this host's buffer cache while
    something here holds it open; the flush makes the next probe read the disk itself.
    Errors are ignored: the probe then reads what it can.
    """
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.ioctl(fd, BLKFLSBUF, 0)
    except OSError:
        pass
    finally:
        os.close(fd)
