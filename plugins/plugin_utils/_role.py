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

    The members of what those volumes need on every host (the o2cb cluster of OCFS2 volumes):
    the storages' declared hosts, never the play's.
    """
    found = []
    for storage in storages or []:
        if storage.get("state", "present") != "present":
            continue
        volumes = [v for v in storage.get("volumes") or [] if v.get("state", "present") == "present"]
        if any(v.get("type", "external") == volume_type for v in volumes):
            found += [h for h in storage.get("hosts") or [] if h not in found]
    return found
