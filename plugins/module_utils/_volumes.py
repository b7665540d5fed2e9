# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes of an image storage: mounting, removal guards, status. Private to the collection."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from . import _probe
from ._errors import StorageError
from ._mounts import FstabEntry, containing_mount, fstab_options, mounted_at, normpath
from ._qemu import can_write

_NO_MOUNT = type("NoMount", (), {"fstype": None})
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CLUSTER_FS = ("ocfs2", "gfs2")
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "glusterfs", "ceph")


def check_name(value, option):
    if not NAME_RE.match(value or ""):
        raise StorageError(
            f"{option} {value!r} is not a valid name: use letters, digits, '.', '_' and '-' (at most 64, "
            "starting with a letter or digit); it becomes part of paths"
        )


def check_mount_point(value, what):
    if not value or not value.startswith("/") or normpath(value) == "/":
        raise StorageError(f"{what}: mount_point {value!r} must be an absolute path other than /")
    return normpath(value)


@dataclass
class MountSpec:
    """What the collection mounts for a volume: resolved once from src/fstype/opts."""

    src: str
    kind: str  # block, bind or network
    fstype: str
    opts: list
    device: str | None = None

    @property
    def options(self):
        return ",".join(self.opts) or "defaults"

    def entry(self, mount_point):
        return FstabEntry(self.src, mount_point, self.fstype, self.options)


def mount_spec(host, src, fstype, opts, what, current=None):
    """Classify ``src`` and settle its filesystem type and options, or explain the error."""
    opts = fstab_options(opts)
    if src.startswith("//"):
        kind, fstype = "network", fstype or "cifs"
    elif re.match(r"^([^/=:\[]+|\[[0-9A-Fa-f:.]+\]):/", src):
        kind, fstype = "network", fstype or "nfs"
    elif src.startswith("/") and os.path.isdir(src):
        kind, fstype = "bind", "none"
        if "bind" not in opts and "rbind" not in opts:
            opts.insert(0, "bind")
    elif re.match(r"^(UUID|LABEL|PARTUUID)=", src) or src.startswith("/dev/"):
        device = _probe.resolve_device(src)
        if device is None or not _probe.is_block_device(device):
            raise StorageError(f"{what}: src {src} is not a block device present on this host: fix src")
        if not fstype:
            same = current is not None and _probe.resolve_device(current.source) == device
            fstype = current.fstype if same else host.runner.blkid_type(device, what)
        if not fstype:
            raise StorageError(
                f"{what}: src {src} carries no filesystem; external volumes are never formatted: format it "
                "yourself, or use an OCFS2 volume for a shared LUN"
            )
        return MountSpec(src, "block", fstype, opts, device)
    elif src.startswith("/"):
        raise StorageError(
            f"{what}: src {src} does not exist (or is not a directory or block device) on this host: fix src"
        )
    else:
        raise StorageError(
            f"{what}: src {src!r} is neither a directory, a block device, host:/export (NFS) nor "
            "//server/share (CIFS): fix src"
        )
    if kind == "network" and fstype in NETWORK_FS and "_netdev" not in opts:
        opts.append("_netdev")
    return MountSpec(src, kind, fstype, opts)


def spec_from_record(record):
    """The MountSpec a registered volume was mounted with (its fields are stored resolved)."""
    if not record.get("src"):
        return None
    return MountSpec(
        record["src"], record.get("kind", ""), record.get("fstype") or "auto", fstab_options(record.get("opts"))
    )


def same_source(spec, mount, mount_point):
    """Whether the mount at ``mount_point`` is ``spec``'s source."""
    if mount is None:
        return False
    if spec.kind == "bind":
        try:
            a, b = os.stat(spec.src), os.stat(mount_point)
        except OSError:
            return False
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    if spec.kind == "block" or spec.src.startswith("/") or "=" in spec.src.split(":")[0]:
        return _probe.resolve_device(mount.source) == (spec.device or _probe.resolve_device(spec.src))
    return mount.source.rstrip("/") == spec.src.rstrip("/")


def guard_unmount(mount_point, what, force, images=True):
    """Refuse to cut guests off a mount unless ``force``: images (if asked) or open files below it."""
    images = _probe.images(mount_point) if images else []
    opened = _probe.open_files_below(mount_point)
    if not (images or opened):
        return None
    parts = []
    if images:
        names = ", ".join(i["name"] for i in images[:5]) + (", ..." if len(images) > 5 else "")
        parts.append("%d guest image(s) (%s)" % (len(images), names))
    if opened:
        parts.append("%d open file(s) (%s)" % (len(opened), ", ".join("pid %d %s: %s" % o for o in opened[:3])))
    msg = "{} at {} holds {}; unmounting would cut guests off".format(what, mount_point, " and ".join(parts))
    if not force:
        raise StorageError(
            f"refusing to unmount: {msg}. Stop the guests or move the images, or set force: true to "
            "unmount anyway (images are never deleted)"
        )
    return "force: true: " + msg


def plan_umount(host, plan, mount_point, what, force, remount=None, images=True):
    """Unmount ``mount_point`` after the guards; undo mounts ``remount`` (a MountSpec) again.

    ``images``: whether guest images at the top of the mount block it (volumes), or only
    files held open (media storages, whose ISO images guests only hold while attached).
    """
    warning = guard_unmount(mount_point, what, force, images)
    if warning:
        plan.warnings.append(warning)

    def undo():
        if remount is not None:
            host.runner.mount(remount.src, mount_point, remount.fstype, remount.options, what)

    plan.add(
        f"unmount {mount_point} ({what})",
        lambda: host.runner.umount(mount_point, what),
        undo if remount is not None else None,
    )


def plan_removal(host, plan, storage_name, name, record, force):
    """Unmount (guarded) and drop the fstab entry of a registered volume; never delete data."""
    what = f"volume {name} of image storage {storage_name}"
    mount_point = record["mount_point"]
    spec = spec_from_record(record)
    if spec is None:
        return  # the admin mounts it; unregistering is all there is to do
    current = mounted_at(host.mounts, mount_point)
    if current is not None and same_source(spec, current, mount_point):
        plan_umount(host, plan, mount_point, what, force, remount=spec)
    entry = host.fstab.find(mount_point)
    if entry is not None and entry.spec == spec.src:
        host.fstab.remove(mount_point)


def status(host, storage_name, name, record, probe=True):
    """The details view of a volume: mounted, status, space, capabilities, qemu access, images."""
    mount_point = record["mount_point"]
    current = mounted_at(host.mounts, mount_point)
    spec = spec_from_record(record)
    info = {
        "name": name,
        "image_storage": storage_name,
        "type": record.get("type", "external"),
        "mount_point": mount_point,
        "src": record.get("src"),
        "fstype": (current or containing_mount(host.mounts, mount_point) or _NO_MOUNT).fstype,
        "mounted": current is not None,
        "status": "online",
        "message": "",
        "size": None,
        "free": None,
        "fallocate": None,
        "reflink": None,
        "qemu_writable": None,
        "images": [],
    }
    if not os.path.isdir(mount_point):
        info.update(status="offline", message=f"{mount_point} does not exist or is not a directory")
    elif spec is not None and not same_source(spec, current, mount_point):
        info.update(status="offline", message=f"{mount_point} is not mounted from {spec.src}")
    elif record.get("require_mountpoint") and current is None:
        info.update(
            status="offline",
            message=f"{mount_point} is not a mount point (require_mountpoint): nothing is written underneath",
        )
    if info["status"] != "online" or not probe:
        return info
    info.update(_probe.space(mount_point))
    info.update(_probe.capabilities(mount_point))
    user = host.qemu_user(required=False)
    if user is not None:
        info["qemu_writable"] = can_write(mount_point, user)
        if not info["qemu_writable"]:
            info["message"] = (
                f"the qemu user {user.name} cannot write {mount_point}: guests will not start; set owner_qemu: true or "
                "fix its permissions"
            )
    else:
        info["message"] = "no qemu user on this host: qemu_writable not verified"
    info["images"] = _probe.images(mount_point)
    return info
