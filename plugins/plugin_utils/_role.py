# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the storage role: which volume tasks one host runs. Private.

The role's declaration (``flexvdi_image_storages``) is validated by its argument spec, which
does not fill in defaults; this fills them in and keeps only what applies to one host, once
per task, so that no loop item is templated just to be skipped.
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


def volumes_for_host(storages, host, play_hosts, state="present"):
    """The volumes ``host`` converges to ``state``, one dict of module arguments each.

    ``present``: volumes that are present in image storages that are present and list
    ``host`` (or, without ``hosts``, are on every host of the play). ``absent``: volumes that
    are absent, or whose image storage is, on the hosts of that storage.
    """
    if state not in ("present", "absent"):
        raise ValueError("state must be present or absent, not %r" % (state,))
    found = []
    for storage in storages or []:
        hosts = storage.get("hosts")
        if host not in (play_hosts if hosts is None else hosts):
            continue
        storage_present = storage.get("state", "present") == "present"
        for volume in storage.get("volumes") or []:
            item = dict(VOLUME_DEFAULTS, **{k: v for k, v in volume.items() if v is not None})
            present = storage_present and item["state"] == "present"
            if present != (state == "present"):
                continue
            item["image_storage"] = storage["name"]
            found.append(item)
    return found
