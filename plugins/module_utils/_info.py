# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tree and details view of everything in this host's registry. Private."""

from __future__ import annotations

from . import _direct, _media
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
    return {
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
