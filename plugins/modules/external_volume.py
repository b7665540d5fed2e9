#!/usr/bin/python
# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: external_volume
short_description: An external volume of a flexVDI image storage
version_added: 0.1.0
description:
  - Registers an external volume, a path that every host of the image storage reaches at the
    same place (a local directory, an NFS or CIFS export, a block device), and verifies on
    this host that the path is a directory, mounted from O(src) when given, and writable by the qemu user.
  - With O(src) the collection mounts it and keeps its fstab entry; without it the admin mounts it.
  - Refuses a block device O(src) with a non-cluster filesystem (ext4, XFS, btrfs...) when the
    image storage has more than one host, because a shared LUN mounted by several hosts with such
    a filesystem is corrupted; use an OCFS2 volume, or set O(shared=false) when each host mounts
    its own, different disk. Without O(src), what the admin mounted on O(mount_point) is checked
    the same way.
  - A change of O(src) that fails mounts the old source again, so a failed run never leaves a
    volume unmounted that was mounted before. A volume whose network filesystem does not answer
    (a dead NFS server) fails the run within seconds, naming the server, instead of hanging it.
  - Returns the details view of the volume (status, space, fallocate and reflink support, qemu
    access, guest images).
  - Runs on the hosts of its image storage, which must already be registered with
    M(flexvdi.storage.image_storage).
author:
  - flexVDI storage team (@flexvdi)
extends_documentation_fragment:
  - flexvdi.storage.storage
  - flexvdi.storage.storage.state
  - flexvdi.storage.storage.mounts
  - flexvdi.storage.storage.qemu
  - flexvdi.storage.storage.attributes
options:
  image_storage:
    description: Name of the image storage the volume belongs to.
    type: str
    required: true
  name:
    description: Name of the volume, unique in its image storage.
    type: str
    required: true
  mount_point:
    description:
      - Where the volume is on every host of the image storage. Required with O(state=present).
      - The system's own directories (V(/), V(/etc), V(/usr), V(/var), V(/home), V(/srv), V(/tmp)...)
        are refused; a directory of its own below them, such as V(/home/images), is fine.
    type: path
  src:
    description:
      - What to mount on O(mount_point), when the collection should mount it.
      - A directory (bind mount), a block device (path, C(UUID=), C(LABEL=)),
        C(host:/export) (NFS) or C(//server/share) (CIFS).
      - Without it, O(mount_point) must exist already.
    type: str
  fstype:
    description:
      - Filesystem type of O(src). Detected for block devices and directories, C(nfs) for
        C(host:/export) and C(cifs) for C(//server/share) when not given.
      - One type name this host knows (C(/proc/filesystems), a C(mount.<type>) helper, a kernel module).
    type: str
  opts:
    description:
      - Mount options of O(src), comma separated, without blanks, quotes or C(#).
        C(_netdev) is added for network filesystems.
      - When not set, a block device is mounted with C(nofail), and with C(_netdev) too when it comes
        over the network (iSCSI, NBD, RBD), so a missing disk never stops the host from booting.
      - A change is applied to the live mount (C(mount -o remount)); when the filesystem cannot change
        an option in place, the volume is unmounted and mounted again, with the same guard as a removal.
        A change of options that only fstab reads (C(_netdev), C(nofail), C(x-*)...) only rewrites the
        fstab line.
    type: str
  require_mountpoint:
    description:
      - When V(true), the volume is offline unless O(mount_point) is a mount point, and nothing is
        ever written into the directory underneath, so images never land on the root filesystem
        because a mount was missing.
    type: bool
    default: false
  owner_qemu:
    description:
      - Give the root of the volume to the qemu user and its group, so guests can use it.
    type: bool
    default: false
  shared:
    description:
      - Whether O(src) names the same storage on every host of the image storage (a shared LUN).
      - Set V(false) only when each host mounts its own, different disk; that lifts the refusal of
        non-cluster filesystems on multi-host image storages.
    type: bool
    default: true
seealso:
  - module: flexvdi.storage.image_storage
  - module: flexvdi.storage.storage_info
"""

EXAMPLES = r"""
- name: Local directory for guest images, as in flexVDI's getting started guide
  flexvdi.storage.external_volume:
    image_storage: MyImageStorage
    name: MyExternalVolume
    mount_point: /home/images
    owner_qemu: true

- name: NFS export mounted by every host of the storage, never written to when not mounted
  flexvdi.storage.external_volume:
    image_storage: MyImageStorage
    name: NFS
    mount_point: /srv/images/nfs
    src: 192.0.2.20:/srv/exports/images
    opts: vers=4.2,nofail
    require_mountpoint: true
    owner_qemu: true

- name: Unmount and unregister a volume (guest images stay on it)
  flexvdi.storage.external_volume:
    image_storage: MyImageStorage
    name: NFS
    state: absent
"""

RETURN = r"""
actions:
  description: What was done, or in check mode would be done, in order.
  returned: always
  type: list
  elements: str
  sample:
    - create directory /srv/images/nfs
    - update /etc/fstab
    - mount 192.0.2.20:/srv/exports/images on /srv/images/nfs (nfs, vers=4.2,_netdev)
    - update /etc/flexvdi/storage.json
volume:
  description: The details view of the volume on this host.
  returned: always
  type: dict
  contains:
    name:
      description: >-
        Volume name.
      type: str
      returned: always
      sample: MyExternalVolume
    image_storage:
      description: >-
        Image storage name.
      type: str
      returned: always
      sample: MyImageStorage
    type:
      description: >-
        Volume type.
      type: str
      returned: when present
      sample: external
    mount_point:
      description: >-
        Where the volume is.
      type: str
      returned: when present
      sample: /home/images
    src:
      description: >-
        What the collection mounts there, if anything.
      type: str
      returned: when present
      sample: null
    fstype:
      description: >-
        Filesystem type of the mount or of O(src).
      type: str
      returned: when present
      sample: ext4
    mounted:
      description: >-
        Whether O(mount_point) is a mount point.
      type: bool
      returned: when present
      sample: false
    in_fstab:
      description: Whether fstab has an entry for the mount point, so that it is mounted at boot.
      type: bool
      returned: when present
      sample: true
    status:
      description: >-
        V(online), V(offline) (not mounted, its disk missing, or not a mount point with O(require_mountpoint)),
        V(unresponsive) (its network filesystem did not answer within 10 seconds) or V(absent).
      type: str
      returned: always
      sample: online
    message:
      description: Why the volume is offline or not usable by qemu; empty when all is well.
      type: str
      returned: when present
      sample: ""
    size:
      description: >-
        Size in bytes (null when offline).
      type: int
      returned: when present
      sample: 107374182400
    free:
      description: >-
        Free bytes (null when offline).
      type: int
      returned: when present
      sample: 53687091200
    fallocate:
      description: >-
        Whether the filesystem supports fallocate(2) (null if unknown).
      type: bool
      returned: when present
      sample: true
    reflink:
      description: >-
        Whether the filesystem supports reflinks (FICLONE) (null if unknown).
      type: bool
      returned: when present
      sample: false
    qemu_writable:
      description: >-
        Whether the qemu user can read, write and enter it, asked of the kernel as that user with access(2)
        (null if unknown); when not, RV(volume.message) names the directory that blocks it.
      type: bool
      returned: when present
      sample: true
    images:
      description: Guest images at the top of the volume, sorted by name (the removal guard also counts those below).
      type: list
      elements: dict
      returned: when present
      sample: [{"name": "win11.qcow2", "size": 42949672960, "allocated": 8589934592, "format": "qcow2"}]
"""

from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

_payload.compile_once()  # first: every file imported below is compiled once (see _payload)

from ansible_collections.flexvdi.storage.plugins.module_utils import _external, _module


def main():
    _module.run_object(_module.external_volume_spec, _external.converge)


if __name__ == "__main__":
    main()
