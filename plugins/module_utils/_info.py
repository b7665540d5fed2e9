# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tree and details view of everything in this host's registry. Private."""

from __future__ import annotations

from . import _direct, _media, _multipath
from ._voltypes import status


def gather(host):
    data = host.registry.load()
    tree = []
    for name, storage in sorted(data["image_storages"].items()):
        volumes = [
            status(host, name, volume, record, probe_fs=host.params["probe"])
            for volume, record in sorted(storage.get("volumes", {}).items())
        ]
        tree.append({"name": name, "hosts": storage.get("hosts", []), "root": storage.get("root"), "volumes": volumes})
    result = {
        "changed": False,
        "registry": host.registry.path,
        "image_storages": tree,
        "media_storages": [_media.status(host, k, v) for k, v in sorted(data["media_storages"].items())],
        # The media shares this host serves (role media_server) and who may connect to each.
        "media_shares": _media.served_shares(host.params.get("samba_config") or _media.SAMBA_CONFIG),
        "direct_storages": [
            _direct.status(host, k, v, probe=host.params["probe"]) for k, v in sorted(data["direct_storages"].items())
        ],
    }
    if data.get("san_targets"):
        result["san_targets"] = san_status(data["san_targets"])
    return result


def san_status(registered, sysfs=None):
    """Each registered SAN target's LUNs: the map, its paths now (total, active: usable in sysfs) and the
    paths it had when converged. Read from sysfs in-process."""
    maps = _multipath.maps(sysfs)
    found = []
    for name, record in sorted(registered.items()):
        luns = []
        for wwid, lun in sorted((record.get("luns") or {}).items()):
            m = maps.get(wwid)
            luns.append(
                {
                    "wwid": wwid,
                    "device": _multipath.map_device(wwid),
                    "map": m is not None,
                    "paths": len(m["paths"]) if m else 0,
                    "active": m["active"] if m else 0,
                    "converged_paths": lun.get("paths"),
                    "path_states": {p["name"]: p["state"] for p in m["paths"]} if m else {},
                }
            )
        found.append({"name": name, "iqn": record.get("iqn"), "portals": record.get("portals", []), "luns": luns})
    return found
