# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""External volumes: the admin's path, optionally mounted by us. Private to the collection."""

from __future__ import annotations

import os

from ._errors import StorageError
from ._mounts import mounted_at
from ._validate import check_path
from ._volumes import (
    CLUSTER_FS,
    check_responsive,
    converge_volume,
    mount_spec,
    mounted_spec,
    on_network_fs,
    plan_mount,
    plan_owner,
    plan_remount,
    plan_umount,
    remount_from,
    same_source,
    status,
)


def converge(host):
    p = host.params
    what = "external volume {} of image storage {}".format(p["name"], p["image_storage"])
    if p["src"] is None and (p["fstype"] or p["opts"]):
        raise StorageError(f"{what}: fstype and opts only apply with src: set src, or drop them")

    def mount_point_of(_storage):
        return check_path(p["mount_point"], what, resolve=not on_network_fs(host, p["mount_point"] or "/"))

    return converge_volume(host, "external", what, mount_point_of, plan_present, status)


def _refuse_shared(what, p, hosts, source, fstype, how):
    raise StorageError(
        "%s: %s %s, which is not a cluster filesystem, and image storage %s has %d hosts (%s): "
        "mounting one disk from several hosts with it corrupts it. Use an OCFS2 volume (or format the "
        "LUN with OCFS2 or GFS2); if every host mounts its own, different disk, set shared: false"
        % (
            what,
            how,
            source if fstype is None else "%s with %s" % (source, fstype),
            p["image_storage"],
            len(hosts),
            ", ".join(hosts),
        )
    )


def plan_present(host, plan, storage, existing, mount_point, what):
    p = host.params
    current = mounted_at(host.mounts, mount_point)
    check_responsive(host, mount_point, what)
    spec = mount_spec(host, p["src"], p["fstype"], p["opts"], what, current) if p["src"] else None
    hosts = storage.get("hosts", [])
    shared_by_many = p["shared"] and len(hosts) > 1
    if shared_by_many and spec is not None and spec.kind == "block" and spec.fstype not in CLUSTER_FS:
        _refuse_shared(what, p, hosts, spec.src, spec.fstype, "src")
    if shared_by_many and spec is None and current is not None and current.fstype not in CLUSTER_FS:
        from ._blockdev import is_block_device  # only here: a volume without src never reads a device

        if is_block_device(current.source):
            _refuse_shared(
                what, p, hosts, current.source, current.fstype, f"{mount_point} is mounted from block device"
            )
    if os.path.lexists(mount_point) and not os.path.isdir(mount_point):
        raise StorageError(f"{what}: mount_point {mount_point} exists and is not a directory: fix mount_point")
    # Check mode cannot see what earlier tasks of the play would have made (the directory an admin's
    # pre-task creates): a missing directory is then a warning, and the real run decides.
    foreseen = spec is None and host.check_mode and not os.path.lexists(mount_point)
    if foreseen:
        plan.warnings.append(
            f"{what}: check mode: mount_point {mount_point} does not exist on host {host.hostname} yet; the real run "
            "fails unless an earlier task creates or mounts it"
        )
    if spec is None:
        if not os.path.isdir(mount_point) and not foreseen:
            raise StorageError(
                f"{what}: mount_point {mount_point} does not exist on host {host.hostname}: external volumes are mounted by the "
                "admin, so create or mount it first, or set src to have the collection mount it"
            )
        if p["require_mountpoint"] and current is None and not foreseen:
            raise StorageError(
                f"{what}: {mount_point} is not a mount point and require_mountpoint is true: the volume is offline, "
                "so nothing was written into the directory underneath; mount it first, or set src to "
                "have the collection mount it"
            )
    else:
        plan.mkdirs(mount_point)
        old_options = remount_from(existing, host.fstab.find(mount_point), spec)
        host.fstab.set(spec.entry(mount_point))
        host.plan_fstab(plan)
        if current is not None and not same_source(spec, current, mount_point):
            # Undone by mounting the old source again: a failed change leaves nothing unmounted.
            undo = mounted_spec(existing, current)
            plan_umount(host, plan, mount_point, f"{what}, mounted from {current.source}", p["force"], remount=undo)
            plan_mount(host, plan, spec, mount_point, what)
        elif current is None:
            plan_mount(host, plan, spec, mount_point, what)
        elif old_options is not None:
            plan_remount(host, plan, spec, old_options, mount_point, what, p["force"])
    if p["owner_qemu"]:
        settled = not foreseen and (spec is None or same_source(spec, current, mount_point))
        plan_owner(host, plan, mount_point, settled=settled)
    record = {
        "type": "external",
        "mount_point": mount_point,
        "require_mountpoint": p["require_mountpoint"],
        "owner_qemu": p["owner_qemu"],
        "shared": p["shared"],
    }
    if spec is not None:
        record.update(src=spec.src, kind=spec.kind, fstype=spec.fstype, opts=spec.options)
    return record
