# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes of an image storage: mounting, removal guards, status. Private to the collection."""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass

from . import _probe, _qemu
from ._errors import StorageError
from ._mounts import FstabEntry, containing_mount, fstab_options, kernel_options, mounted_at
from ._registry import image_storage
from ._validate import check_mount_fields, check_name

_NO_MOUNT = type("NoMount", (), {"fstype": None})
CLUSTER_FS = ("ocfs2", "gfs2")
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "glusterfs", "ceph")


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
    """Classify ``src`` and settle its filesystem type and options, or explain the error.

    A block device mounted with no options of the user's gets ``nofail`` (and ``_netdev``
    when it comes over the network, iSCSI or NBD), so a missing disk never stops the host
    from booting; options the user sets are taken as they are.
    """
    check_mount_fields(what, src, fstype, opts)
    user_opts = bool(fstab_options(opts))
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
        from ._blockdev import fs_type, is_block_device, is_network_block, refuse_multipath_path, resolve_device

        device = resolve_device(src)
        if device is None or not is_block_device(device):
            raise StorageError(f"{what}: src {src} is not a block device present on this host: fix src")
        refuse_multipath_path(src, device, what, option="src")
        if not fstype:
            same = current is not None and resolve_device(current.source) == device
            fstype = current.fstype if same else fs_type(host.runner, device, what)
        if not fstype:
            raise StorageError(
                f"{what}: src {src} carries no filesystem; external volumes are never formatted: format it "
                "yourself, or use an OCFS2 volume for a shared LUN"
            )
        if not user_opts:
            opts = ["nofail"] + (["_netdev"] if is_network_block(device) else [])
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
        from ._blockdev import resolve_device

        return resolve_device(mount.source) == (spec.device or resolve_device(spec.src))
    return mount.source.rstrip("/") == spec.src.rstrip("/")


def guard_unmount(mount_point, what, force, images=True):
    """Refuse to cut guests off a mount unless ``force``: images (if asked) or open files below it.

    Images are counted at every depth (a guest's disk in a subdirectory is still a guest's).
    """
    count, names = _probe.count_images(mount_point) if images else (0, [])
    opened = _probe.open_files_below(mount_point)
    if not (count or opened):
        return None
    parts = []
    if count:
        parts.append("%d guest image(s) (%s)" % (count, ", ".join(names) + (", ..." if count > len(names) else "")))
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

    ``images``: whether guest images on the mount block it (volumes), or only files held open
    (media storages, whose ISO images guests only hold while attached).
    """
    warning = guard_unmount(mount_point, what, force, images)
    if warning:
        plan.warnings.append(warning)

    def undo():
        host.runner.mount(remount.src, mount_point, remount.fstype, remount.options, what)
        host.forget_mounts()

    def do():
        host.runner.umount(mount_point, what)
        host.forget_mounts()

    plan.add(f"unmount {mount_point} ({what})", do, undo if remount is not None else None)


def plan_mount(host, plan, spec, mount_point, what):
    """Mount ``spec`` on ``mount_point`` and prove it from mountinfo; undo unmounts it."""

    def undo():
        host.runner.umount(mount_point, what)
        host.forget_mounts()

    plan.add(
        f"mount {spec.src} on {mount_point} ({spec.fstype}, {spec.options})",
        lambda: mount_and_verify(host, spec, mount_point, what),
        undo,
    )


def mount_and_verify(host, spec, mount_point, what):
    """Mount, then read mountinfo to prove the mount is the one asked for; if not, unmount it."""
    host.runner.mount(spec.src, mount_point, spec.fstype, spec.options, what)
    host.forget_mounts()
    current = mounted_at(host.mounts, mount_point)
    if not same_source(spec, current, mount_point):
        if current is not None:
            host.runner.umount(mount_point, what)
            host.forget_mounts()
        raise StorageError(
            "{}: mount returned success but {} is {}, not {}: check dmesg and the src/opts options".format(
                what, mount_point, f"mounted from {current.source}" if current else "not mounted", spec.src
            )
        )


def mounted_spec(record, current):
    """How to mount again what is mounted now (the undo of an unmount), or None if unknown.

    The registered spec when it is what is mounted; otherwise mountinfo's source, type and
    per-mount options, which is exact only for a whole filesystem (a bind mount of a
    subdirectory shows its device, not its directory).
    """
    if current is None:
        return None
    spec = spec_from_record(record) if record else None
    if spec is not None and same_source(spec, current, current.mount_point):
        return spec
    if current.root != "/":
        return None
    kind = "block" if current.source.startswith("/dev/") else "network"
    return MountSpec(current.source, kind, current.fstype, fstab_options(current.options))


def remount_from(record, entry, spec):
    """The options ``spec.src`` is mounted with now (registered, else in fstab) when applying
    ``spec.options`` needs a remount; None when unknown or when only fstab-only options differ."""
    if record and record.get("src") == spec.src and record.get("opts"):
        old = record["opts"]
    elif entry is not None and entry.spec == spec.src:
        old = entry.mntops
    else:
        return None
    return old if kernel_options(old) != kernel_options(spec.options) else None


def plan_remount(host, plan, spec, old_options, mount_point, what, force):
    """Apply changed options to a live mount: ``mount -o remount``, else unmount and mount.

    Unmounting needs the same guard as a removal, read now (before anything is done): when the
    filesystem refuses the remount and the guard refuses the unmount, the run fails naming force
    and undoes its earlier steps; the volume stays mounted as it was.
    """
    try:
        warning, blocked = guard_unmount(mount_point, what, force), None
    except StorageError as exc:
        warning, blocked = None, exc
    old = MountSpec(spec.src, spec.kind, spec.fstype, fstab_options(old_options), spec.device)

    def change(to):
        rc, _out, _err = host.runner.run(
            ["mount", "-o", "remount," + to.options, "--", to.src, mount_point], what, check=False
        )
        if rc == 0:
            host.forget_mounts()
            return
        if blocked is not None:
            raise StorageError(
                f"{what}: {spec.fstype} cannot change the options of {mount_point} in place (mount -o remount "
                f"failed), and unmounting to apply them is refused: {blocked.msg}"
            )
        if warning:
            plan.warnings.append(warning)
        host.runner.umount(mount_point, what)
        host.forget_mounts()
        mount_and_verify(host, to, mount_point, what)

    plan.add(
        f"remount {mount_point} with options {spec.options} (were {old_options})",
        lambda: change(spec),
        lambda: change(old),
    )


def converge_volume(host, kind, what, mount_point_of, plan_present, status_fn, plan_absent=None):
    """What every volume module does: one transaction on the registry, then the details view.

    ``mount_point_of(storage)`` gives the validated mount point (present only);
    ``plan_present(host, plan, storage, existing, mount_point, what)`` plans the type's steps
    and returns its registry record; ``status_fn`` is the type's details view. Removal is the
    same for every type (``plan_removal``): unmount (guarded), fstab entry and record dropped,
    unless the type's module does more (``plan_absent``, same arguments).
    """
    p = host.params
    check_name(p["image_storage"], "image_storage")
    check_name(p["name"], "name")

    def edit(before, after, plan):
        if p["state"] == "absent" and p["image_storage"] not in before["image_storages"]:
            return
        storage = image_storage(before, p["image_storage"], host.registry.path)
        volumes = after["image_storages"][p["image_storage"]]["volumes"]
        existing = volumes.get(p["name"])
        check_kind(existing, kind, what)
        if p["state"] == "present":
            mount_point = mount_point_of(storage)
            _conflicts(before, p["image_storage"], p["name"], mount_point, what)
            source = p.get("src") or p.get("device")
            if before["direct_storages"]:  # only then is the direct storages' code imported (compiled)
                from ._direct import direct_storage_of

                direct = direct_storage_of(before, source)
                if direct is not None:
                    raise StorageError(
                        f"{what}: {source} is the disk of direct storage {direct}, given to guests: the host "
                        "never mounts it; choose another device, or remove the direct storage first"
                    )
            volumes[p["name"]] = plan_present(host, plan, storage, existing, mount_point, what)
        elif existing is not None:
            (plan_absent or plan_removal)(host, plan, p["image_storage"], p["name"], volumes.pop(p["name"]), p["force"])

    result, after = host.transaction(edit)
    record = after["image_storages"].get(p["image_storage"], {}).get("volumes", {}).get(p["name"])
    if record is None:
        result["volume"] = {"name": p["name"], "image_storage": p["image_storage"], "status": "absent"}
        return result
    host.forget_mounts()
    # A real converge that changed the volume measures fallocate and reflink with scratch files; a
    # no-op (and check mode) writes nothing and tells them from the filesystem type, as storage_info does.
    measure = result["changed"] and not host.check_mode
    result["volume"] = status_fn(host, p["image_storage"], p["name"], record, write=measure)
    check_answered(result["volume"], what, result)
    if result["volume"]["qemu_writable"] is False:
        check_qemu_writable(host, record, what, result)
    return result


def check_qemu_writable(host, record, what, result):
    """A volume the qemu user cannot write: a failure where the declaration asks for it (owner_qemu), else a warning.

    In check mode a planned chown may still fix the volume's own directory, so there it fails only when
    nothing is planned or a parent directory blocks the way (which no chown of the volume fixes).
    """
    problem = "{}: {}".format(what, result["volume"]["message"])
    fixable = _qemu.REACH not in result["volume"]["message"]
    if not record.get("owner_qemu") or (host.check_mode and result.get("changed") and fixable):
        host.module.warn(problem)
        return
    done = result.get("actions") or []
    if result.get("changed") and done and not host.check_mode:
        raise StorageError(f"{problem}; done before this was seen: {', '.join(done)}", left=done)
    raise StorageError(problem)


def check_kind(existing, kind, what):
    """A registered volume is managed by the module of its own type only."""
    other = (existing or {}).get("type", "external")
    if existing is not None and other != kind:
        raise StorageError(
            f"{what}: this host has it registered with type {other}, not {kind}: manage it with "
            f"flexvdi.storage.{other}_volume (state: absent removes it, data kept), or choose another name"
        )


def _conflicts(data, storage_name, name, mount_point, what):
    for other_storage, storage in data["image_storages"].items():
        for other, record in storage.get("volumes", {}).items():
            if (other_storage, other) != (storage_name, name) and record.get("mount_point") == mount_point:
                raise StorageError(
                    f"{what}: mount_point {mount_point} is already volume {other} of image storage {other_storage}: "
                    "choose another mount_point"
                )


def plan_owner(host, plan, mount_point, settled):
    """chown the volume root to the qemu user; when it is only mounted by this plan, decide then."""
    user = host.qemu_user(required=True)
    target = (user.uid, user.gid)
    label = f"{user.name}:{user.group_name}"
    if settled:
        st = os.stat(mount_point)
        if (st.st_uid, st.st_gid) == target:
            return
        before = (st.st_uid, st.st_gid)
        plan.add(
            "set owner of %s to %s (was %d:%d)" % (mount_point, label, before[0], before[1]),
            lambda: os.chown(mount_point, *target),
            lambda: os.chown(mount_point, *before),
        )
        return
    previous = []

    def do():
        st = os.stat(mount_point)
        previous.append((st.st_uid, st.st_gid))
        if previous[0] != target:
            os.chown(mount_point, *target)

    plan.add(
        f"set owner of {mount_point} to {label} once mounted",
        do,
        lambda: previous and os.chown(mount_point, *previous[0]),
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
        check_responsive(host, mount_point, what)
        plan_umount(host, plan, mount_point, what, force, remount=spec)
    entry = host.fstab.find(mount_point)
    if entry is not None and entry.spec == spec.src:
        host.fstab.remove(mount_point)


# --- liveness: no probe of a network filesystem may hang the run ---------------------------

PROBE_TIMEOUT = 10.0
_SERVER_KINDS = (
    ("nfs", "NFS"),
    ("cifs", "CIFS"),
    ("smb3", "CIFS"),
    ("fuse.glusterfs", "Gluster"),
    ("glusterfs", "Gluster"),
    ("fuse", "FUSE"),
)


def _holder(host, path):
    return mounted_at(host.mounts, path) or containing_mount(host.mounts, path)


def on_network_fs(host, path):
    """Whether ``path`` is (or lies below) a network or cluster mount: never stat it unbounded."""
    mount = _holder(host, path)
    return mount is not None and _probe.is_network_fstype(mount.fstype)


def server_of(source):
    """The server named by a network mount's source (host:/export, //server/share, server:/vol)."""
    if source.startswith("//"):
        return source[2:].split("/", 1)[0]
    if ":" in source:
        return source.rsplit(":", 1)[0].strip("[]") if source.startswith("[") else source.split(":", 1)[0]
    return source


def unresponsive_message(mount, path, error=None):
    """The words of every report of a server that does not answer: storage_info's and a converge's.

    ``error``: what the filesystem answered instead (an errno's text); None when it did not
    answer at all within the probe's bound.
    """
    kind = next((label for prefix, label in _SERVER_KINDS if mount.fstype.startswith(prefix)), mount.fstype)
    how = "answered: %s" % error if error else "did not answer within %d s" % PROBE_TIMEOUT
    return "%s server %s is not responding: %s (%s from %s) %s" % (
        kind,
        server_of(mount.source),
        path,
        mount.fstype,
        mount.source,
        how,
    )


def probe(host, path, fn, *args):
    """``fn(*args)`` about ``path``: bounded in a child when a network filesystem holds it.

    Returns (value, None), or (None, message) when the filesystem did not answer in time;
    a server found dead once in this run is not waited for again.
    """
    mount = _holder(host, path)
    if mount is None or not _probe.is_network_fstype(mount.fstype):
        return fn(*args), None
    known = host.unresponsive.get(mount.source)
    if known:
        return None, known
    ok, value = _probe.bounded(fn, *args, timeout=PROBE_TIMEOUT)
    if ok:
        return value, None
    if value == "timeout":
        return None, _dead(host, mount, unresponsive_message(mount, path))
    return None, f"probing {path} failed: {value}"


def _dead(host, mount, message):
    """Remember for the rest of this run that ``mount``'s server does not answer; the message."""
    host.unresponsive[mount.source] = message
    return message


def answer_problem(host, path, code):
    """Why the filesystem holding ``path`` failed statvfs with errno ``code`` (0: it answered).

    None when there is no problem of the filesystem: it answered, or ``path`` is not there
    (ENOENT, ENOTDIR: the caller says what that means), or it is a FUSE mount whose daemon
    died (ENOTCONN with no daemon: a stale mount, which its volume type reports and mounts
    again). A network filesystem's server error is worded as ``unresponsive_message``.
    """
    if code in (0, errno.ENOENT, errno.ENOTDIR):
        return None
    mount = _holder(host, path)
    fuse = mount is not None and mount.fstype.startswith("fuse")
    if code == errno.ENOTCONN and fuse and not _probe.fuse_client_alive(mount.mount_point):
        return None
    if mount is not None and _probe.is_network_fstype(mount.fstype) and code in _probe.SERVER_ERRNOS:
        return _dead(host, mount, unresponsive_message(mount, path, os.strerror(code)))
    return f"probing {path} failed: {os.strerror(code)}"


def check_responsive(host, path, what):
    """A converge fails on an object whose filesystem does not answer, in storage_info's words.

    Asked with statvfs, which reaches the server (``_probe.statfs_errno``): the lexists this
    used to ask was answered from NFS's attribute cache, so a converge right after the server
    died went on and reported the volume fine. Runs before anything is planned: the failure
    changes nothing.
    """
    code, problem = probe(host, path, _probe.statfs_errno, path)
    problem = problem or answer_problem(host, path, code)
    if problem:
        raise StorageError(f"{what}: {problem}; nothing was changed")


def check_answered(info, what, result):
    """A converge never reports as fine an object whose filesystem stopped answering.

    ``info`` is the object's details view, read after the run's own steps; when a probe of it
    timed out (status ``unresponsive``), the object fails with the same words, naming what the
    run had already done.
    """
    if info.get("status") != "unresponsive":
        return
    done = result.get("actions") or []
    if result.get("changed") and done:
        raise StorageError(
            "{}: {}; done before it stopped answering: {}".format(what, info["message"], ", ".join(done)), left=done
        )
    raise StorageError(f"{what}: {info['message']}; nothing was changed")


def missing_source(spec):
    """Why ``spec`` cannot be mounted here, when its source is plainly absent (a detached disk)."""
    if spec.kind == "block":
        from ._blockdev import resolve_device

        if resolve_device(spec.src) is None:
            return f"src {spec.src} is not present on this host (disk missing or detached)"
    if spec.kind == "bind" and not os.path.isdir(spec.src):
        return f"src {spec.src} does not exist on this host"
    return None


def qemu_access(host, path, owner_qemu=False):
    """(qemu_writable, message) for ``path``, asked as the qemu user without writing anything."""
    user = host.qemu_user(required=False)
    if user is None:
        return None, "no qemu user on this host: qemu access not verified"
    holder = _holder(host, path)
    known = host.unresponsive.get(getattr(holder, "source", None))
    if known:
        return None, known
    ok, message = _qemu.access(path, user, timeout=PROBE_TIMEOUT)
    if ok is None and message == "timeout":
        if holder is not None and _probe.is_network_fstype(holder.fstype):
            return None, _dead(host, holder, unresponsive_message(holder, path))
        return None, "could not verify that the qemu user %s can write %s: no answer within %d s" % (
            user.name,
            path,
            PROBE_TIMEOUT,
        )
    if ok is None:
        return None, message
    if not ok and owner_qemu:
        message = message.replace("set owner_qemu: true or ", "")
    return ok, (message or "") + ("; guests will not start" if not ok else "")


def status(host, storage_name, name, record, probe_fs=True, write=False):
    """The details view of a volume: mounted, status, space, capabilities, qemu access, images.

    Nothing here writes unless ``write`` (a real converge measures fallocate and reflink with
    scratch files); every look inside a network filesystem is bounded in time.
    """
    mount_point = record["mount_point"]
    current = mounted_at(host.mounts, mount_point)
    holder = current or containing_mount(host.mounts, mount_point)
    spec = spec_from_record(record)
    info = {
        "name": name,
        "image_storage": storage_name,
        "type": record.get("type", "external"),
        "mount_point": mount_point,
        "src": record.get("src"),
        "fstype": (holder or _NO_MOUNT).fstype,
        "mounted": current is not None,
        "in_fstab": host.fstab.find(mount_point) is not None,
        "status": "online",
        "message": "",
        "size": None,
        "free": None,
        "fallocate": None,
        "reflink": None,
        "qemu_writable": None,
        "images": [],
    }
    if spec is not None and not same_source(spec, current, mount_point):
        why = missing_source(spec)
        message = f"{mount_point} is not mounted from {spec.src}"
        info.update(status="offline", message=f"{why}: {message}" if why else message)
        return info
    if record.get("require_mountpoint") and current is None:
        info.update(
            status="offline",
            message=f"{mount_point} is not a mount point (require_mountpoint): nothing is written underneath",
        )
        return info
    options = ",".join(o for o in ((holder.options, holder.super_options) if holder else ()) if o)
    args = (mount_point, info["fstype"], holder.source if holder else None, options)
    if probe_fs:
        facts, problem = probe(host, mount_point, _probe.volume_facts, *args, write)
    else:
        facts, problem = probe(host, mount_point, os.path.isdir, mount_point)
        facts = {"is_dir": facts, "errno": 0}
    problem = problem or answer_problem(host, mount_point, facts.get("errno", 0))
    if problem:
        info.update(status="unresponsive", message=problem)
        return info
    if not facts["is_dir"]:
        info.update(status="offline", message=f"{mount_point} does not exist or is not a directory")
        return info
    if not probe_fs:
        return info
    for key in ("size", "free", "fallocate", "reflink", "images"):
        info[key] = facts[key]
    info["qemu_writable"], info["message"] = qemu_access(host, mount_point, record.get("owner_qemu"))
    if info["qemu_writable"] is None and host.unresponsive.get(getattr(holder, "source", None)):
        info["status"] = "unresponsive"
    return info
