# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one table of volume types: how the engine reaches each. Private to the collection.

``image_storage`` (removal of a storage's volumes), ``storage_info`` (the details view) and
the volume modules reach a volume's type only through ``TYPES``: a new type (Gluster, direct
storages) adds one entry here and nothing else changes in them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import _external, _gluster, _ocfs2, _volumes
from ._errors import StorageError


@dataclass(frozen=True)
class VolumeType:
    name: str
    module: str
    # (host, plan, storage, existing, mount_point, what) -> registry record
    plan_present: Callable
    # (host, plan, storage_name, name, record, force): unmount (guarded), fstab entry dropped
    plan_removal: Callable
    # (host, storage_name, name, record, probe_fs=True, write=False) -> the details view
    status: Callable


TYPES = {
    "external": VolumeType(
        "external", "flexvdi.storage.external_volume", _external.plan_present, _volumes.plan_removal, _volumes.status
    ),
    "ocfs2": VolumeType(
        "ocfs2", "flexvdi.storage.ocfs2_volume", _ocfs2.plan_present, _volumes.plan_removal, _ocfs2.status
    ),
    # Removal through image_storage unmounts and unregisters; the Gluster volume itself stays.
    "gluster": VolumeType(
        "gluster", "flexvdi.storage.gluster_volume", _gluster.plan_present, _gluster.plan_absent, _gluster.status
    ),
}


def of(record, storage_name="", name=""):
    """The type of a registered volume (records written before types existed are external)."""
    kind = record.get("type", "external")
    try:
        return TYPES[kind]
    except KeyError:
        raise StorageError(
            f"volume {name} of image storage {storage_name} has type {kind!r}, which this version of "
            f"flexvdi.storage does not know ({', '.join(sorted(TYPES))}): upgrade the collection"
        ) from None


def plan_removal(host, plan, storage_name, name, record, force):
    of(record, storage_name, name).plan_removal(host, plan, storage_name, name, record, force)


def status(host, storage_name, name, record, probe_fs=True, write=False):
    return of(record, storage_name, name).status(host, storage_name, name, record, probe_fs=probe_fs, write=write)
