# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image storages: membership of this host, root directory, removal. Private to the collection."""

from __future__ import annotations

import os

from ._errors import StorageError
from ._validate import check_name, check_path
from ._volumes import check_responsive, on_network_fs

DEFAULT_ROOT = "/var/lib/flexvdi/volumes"


def converge(host):
    p = host.params
    name = p["name"]
    check_name(name, "name")
    hosts = host.hosts(f"image storage {name}")
    wanted = p["root"] or os.path.join(DEFAULT_ROOT, name)
    root = check_path(wanted, f"image storage {name}", option="root", resolve=not on_network_fs(host, wanted))
    member = p["state"] == "present" and host.hostname in hosts

    def edit(_before, after, plan):
        storages = after["image_storages"]
        existing = storages.get(name)
        if p["state"] == "present":
            host.check_host_set(f"image storage {name}", existing)
        if member:
            check_responsive(host, root, f"image storage {name}")
            if os.path.lexists(root) and not os.path.isdir(root):
                raise StorageError(f"image storage {name}: root {root} exists and is not a directory: fix root")
            plan.mkdirs(root)
            storages[name] = {
                "hosts": hosts,
                "root": root,
                "volumes": existing.get("volumes", {}) if existing else {},
            }
        elif existing is not None:
            volumes = existing.get("volumes", {})
            if volumes and p["state"] == "absent" and not p["force"]:
                raise StorageError(
                    "image storage {} still has volumes on this host ({}): remove them first "
                    "(state: absent on each volume), or set force: true to unmount and unregister "
                    "them (guest images are never deleted)".format(name, ", ".join(sorted(volumes)))
                )
            from ._voltypes import plan_removal  # every type's code: only a removal needs it

            for volume, record in sorted(volumes.items()):
                plan_removal(host, plan, name, volume, record, p["force"])
            del storages[name]

    result, after = host.transaction(edit)
    record = after["image_storages"].get(name)
    result["image_storage"] = {
        "name": name,
        "member": record is not None,
        "hosts": record["hosts"] if record else hosts,
        "root": record["root"] if record else root,
        "volumes": sorted(record["volumes"]) if record else [],
    }
    return result
