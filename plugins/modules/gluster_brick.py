#!/usr/bin/python
# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gluster_brick
short_description: The filesystem under a host's Gluster bricks, formatted only on a blank disk
version_added: 0.3.0
description:
  - Formats a local disk with XFS for Gluster bricks (C(mkfs.xfs -i size=512), 512-byte inodes so Gluster's
    extended attributes fit in them, label C(flxbrick)) and mounts it at O(path) with an fstab entry
    (C(noatime,nofail)). The role C(flexvdi.storage.gluster_cluster) runs it for C(gluster_cluster_bricks).
  - Only a device with no signature at all (C(blkid -p)) is formatted, unless O(force=true). A device that
    already is XFS with the brick label is mounted as it is, never formatted again.
  - Bricks are directories below O(path) (the O(flexvdi.storage.gluster_volume#module:brick) of a volume), not
    O(path) itself.
author:
  - flexVDI storage team (@flexvdi)
extends_documentation_fragment:
  - flexvdi.storage.storage
  - flexvdi.storage.storage.mounts
  - flexvdi.storage.storage.attributes
options:
  device:
    description: The local disk, by a name in C(/dev/disk/by-id/) (stable across boots).
    type: str
    required: true
  path:
    description: Where the brick filesystem is mounted, for example V(/srv/gluster/ssd).
    type: path
    required: true
  force:
    description: Format a device that carries another signature (everything on it is lost).
    type: bool
    default: false
seealso:
  - module: flexvdi.storage.gluster_volume
"""

EXAMPLES = r"""
- name: The brick filesystem of the SSD volume
  flexvdi.storage.gluster_brick:
    device: /dev/disk/by-id/virtio-flexvdi-brick
    path: /srv/gluster/ssd
"""

RETURN = r"""
actions:
  description: What was done, or in check mode would be done, in order.
  returned: always
  type: list
  elements: str
  sample:
    - format /dev/disk/by-id/virtio-flexvdi-brick (/dev/vdb) with XFS for a Gluster brick (mkfs.xfs ...)
    - create directory /srv/gluster/ssd
    - update /etc/fstab
    - mount /dev/disk/by-id/virtio-flexvdi-brick on /srv/gluster/ssd (xfs, noatime,nofail)
brick_filesystem:
  description: The device, the kernel name it resolves to, and the mount point.
  returned: success
  type: dict
  sample: {"device": "/dev/disk/by-id/virtio-flexvdi-brick", "kernel_name": "/dev/vdb", "path": "/srv/gluster/ssd"}
"""

from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

_payload.compile_once()  # first: every file imported below is compiled once (see _payload)

from ansible_collections.flexvdi.storage.plugins.module_utils import _gluster, _module


def main():
    spec = {
        "device": {"type": "str", "required": True},
        "path": {"type": "path", "required": True},
        "force": {"type": "bool", "default": False},
    }
    spec.update(_module.registry_args(), **_module.mount_args())
    _module.run(spec, _gluster.converge_brick)


if __name__ == "__main__":
    main()
