#!/usr/bin/python
# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ocfs2_volume
short_description: An OCFS2 volume of a flexVDI image storage, on a LUN every host of the storage shares
version_added: 0.2.0
description:
  - Formats a shared LUN with OCFS2 once, on one host, and mounts it on every host of the image
    storage, with an fstab entry, owned by and verified writable for the qemu user.
  - "Phases, so that no host formats a disk the others do not see: first every host runs the module
    with O(identify=true), which only reports what it sees at O(device) (kernel name, WWN, serial,
    C(/dev/disk/by-id) names, size, what C(blkid -p) finds); the result is registered. Then the
    converging run names that variable in O(identified_by), and before it runs on any host the
    action plugin compares, on the controller, the reports of every host of the storage that is in
    this run: a host that sees another disk, or none, fails the task on every host, naming the hosts
    and what each sees, before any host formats or mounts. Hosts of the storage outside the run
    (C(--limit), C(serial), a job slice) are named in a warning; they are compared when they run.
    The C(flexvdi.storage.storage) role does both steps."
  - One host formats, the designated one, which is the first host listed in the image storage's
    O(flexvdi.storage.image_storage#module:hosts) (a property of the declaration, so every run, slice and
    strategy agrees), and only when the device carries no signature at all (C(blkid -p), as C(wipefs -n)
    sees it), unless O(force=true). A device that already
    is OCFS2 with the volume's O(label) is adopted, never formatted again, even with O(force=true).
    Another label, another filesystem or a partition table is refused, naming O(force).
  - The other hosts wait, at most O(format_timeout) seconds, until the device carries the volume's label
    and a finished format, then mount it; if the designated host is unreachable on a later run, the
    others see the label and go on. In check mode nothing is formatted and nobody waits; the planned
    RV(actions) say what would happen. C(mkfs.ocfs2 --dry-run) checks the format's arguments against the
    device (its size, for instance) in check mode too.
  - When the image storage has more hosts than the device has slots, the run fails with the exact
    C(tunefs.ocfs2 -N) command to run, or the designated host runs it with O(grow_slots=true) (it works
    only while the volume is mounted on no host).
  - V(absent) unmounts it on this host and drops its fstab entry and registry record; the data on the
    device stays. Guest images or open files on it refuse the removal unless O(force=true).
  - Needs the o2cb cluster O(cluster_name) online on every host (role C(flexvdi.storage.ocfs2_cluster)).
  - Returns the details view of the volume (space, fallocate and reflink support, qemu access, images)
    plus what the device tells (label, UUID, slots and the slots in use, the cluster's nodes that have
    it mounted). Every look at the device and inside the mount is bounded in time.
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
    description: Name of the image storage the volume belongs to; it must be registered on this host.
    type: str
    required: true
  name:
    description: Name of the volume, unique in its image storage.
    type: str
    required: true
  device:
    description:
      - The shared LUN, by a name in C(/dev/disk/by-id/) (for example
        V(/dev/disk/by-id/wwn-0x6001405abcdef)), which is the same on every host; kernel names such as
        V(/dev/sdb) change between boots and hosts and are refused. The kernel name it resolves to is
        returned (RV(volume.kernel_name)).
      - Required with O(state=present) and O(identify=true).
    type: str
  label:
    description:
      - The OCFS2 label the volume is formatted with and recognised by; at most 63 characters
        (mkfs.ocfs2's limit), letters, digits, C(.), C(_), C(:), C(+) and C(-).
      - Defaults to C(<image_storage>.<name>), cut to 63 characters with a hash of the whole when longer.
    type: str
  slots:
    description:
      - Node slots to format the volume with; every host that mounts it takes one.
      - Defaults to the number of the image storage's hosts plus one; never fewer than its hosts.
    type: int
  cluster_name:
    description:
      - The o2cb cluster the volume is formatted for (written on the disk), 1 to 16 letters and digits.
      - It must be the cluster of C(/etc/ocfs2/cluster.conf) on every host.
    type: str
    default: flexvdi
  mount_point:
    description:
      - Where the volume is mounted on every host. Defaults to C(<root>/<name>), below the image
        storage's registered root (V(/var/lib/flexvdi/volumes/<image_storage>/<name>) by default).
      - The system's own directories are refused.
    type: path
  mount_opts:
    description:
      - Mount options, comma separated, without blanks, quotes or C(#). C(_netdev),
        C(x-systemd.after=o2cb.service) and C(x-systemd.after=ocfs2.service) are always added. An OCFS2
        mount needs the network and the o2cb cluster online, so at boot it waits for both, and for
        ocfs2.service, which mounts the OCFS2 lines of fstab itself (one mount, not two racing). None of
        them reaches the filesystem.
      - A change is applied to the live mount (C(mount -o remount)), or by unmounting and mounting again,
        guarded like a removal. A change of options that only fstab reads (C(_netdev), C(nofail), C(x-*)...)
        only rewrites the fstab line.
    type: str
    default: _netdev,noatime
  grow_slots:
    description:
      - When the image storage has more hosts than the device has slots, let the designated host add them
        (C(tunefs.ocfs2 -N)) before mounting; the other hosts wait for it. tunefs.ocfs2 adds slots only
        while the volume is mounted on no host.
      - When V(false), such a run fails with the exact command to run.
    type: bool
    default: false
  format_timeout:
    description:
      - Seconds a host that does not format waits for the designated host to format the device (or to add
        slots), polling C(blkid). V(0) does not wait.
    type: int
    default: 300
  identify:
    description:
      - Only report what this host sees at O(device) (RV(identity)) and change nothing, for the controller
        to compare across hosts; register the result and name it in O(identified_by).
    type: bool
    default: false
  identified_by:
    description:
      - Name of the variable each host registered from an O(identify=true) run of this volume (a loop's
        result too), in an earlier task. The action plugin compares those of every host of the storage in
        this run before this host does anything.
      - Required to format when the image storage has more than one host; adopting and mounting a volume
        already formatted does not need it.
    type: str
  force:
    description:
      - Format a device that carries another signature (another filesystem, another label, a partition table),
        losing everything on it. A device that is OCFS2 with the volume's label is never formatted again.
      - With O(state=absent), unmount even when guest images or open files are on the volume (no data is deleted).
notes:
  - Formatting runs C(mkfs.ocfs2 -q -T vmstore -N <slots> -L <label> --cluster-stack=o2cb --cluster-name=<cluster_name>);
    the vmstore type needs a device of at least 2 GiB, and the default features include C(refcount), so guests'
    images can be cloned with reflinks.
  - Two blank disks that share WWN, serial and size cannot be told apart without writing; the format tells
    them apart then, because the other hosts wait for the label the designated host writes.
seealso:
  - module: flexvdi.storage.image_storage
  - module: flexvdi.storage.external_volume
  - module: flexvdi.storage.storage_info
"""

EXAMPLES = r"""
- name: Every host reports the disk it sees at the LUN's name
  flexvdi.storage.ocfs2_volume:
    image_storage: MyImageStorage
    name: SAN1
    device: /dev/disk/by-id/wwn-0x6001405abcdef
    identify: true
  register: san1_seen

- name: Format once (on the first host of MyImageStorage), mount on every host
  flexvdi.storage.ocfs2_volume:
    image_storage: MyImageStorage
    name: SAN1
    device: /dev/disk/by-id/wwn-0x6001405abcdef
    slots: 4
    identified_by: san1_seen

- name: Unmount and unregister it (the data stays on the LUN)
  flexvdi.storage.ocfs2_volume:
    image_storage: MyImageStorage
    name: SAN1
    state: absent
"""

RETURN = r"""
actions:
  description: What was done, or in check mode would be done, in order.
  returned: always
  type: list
  elements: str
  sample:
    - "format /dev/disk/by-id/wwn-0x6001405abcdef (/dev/sdb) with OCFS2: label MyImageStorage.SAN1, 4 slots, o2cb cluster flexvdi (...)"
    - create directory /var/lib/flexvdi/volumes/MyImageStorage/SAN1
    - update /etc/fstab
    - >-
      mount /dev/disk/by-id/wwn-0x6001405abcdef on /var/lib/flexvdi/volumes/MyImageStorage/SAN1
      (ocfs2, _netdev,noatime,x-systemd.after=o2cb.service,x-systemd.after=ocfs2.service)
    - set owner of /var/lib/flexvdi/volumes/MyImageStorage/SAN1 to libvirt-qemu:kvm once mounted
    - update /etc/flexvdi/storage.json
identity:
  description: With O(identify=true), what this host sees at O(device).
  returned: when O(identify=true)
  type: dict
  contains:
    host:
      description: This host's inventory name.
      type: str
      returned: always
      sample: node1
    image_storage:
      description: Image storage name.
      type: str
      returned: always
      sample: MyImageStorage
    name:
      description: Volume name.
      type: str
      returned: always
      sample: SAN1
    label:
      description: The label the volume has, or gets when formatted.
      type: str
      returned: always
      sample: MyImageStorage.SAN1
    hosts:
      description: The image storage's hosts registered on this host (null when it is not registered here).
      type: list
      elements: str
      returned: always
      sample: [node1, node2]
    device:
      description: O(device).
      type: str
      returned: always
      sample: /dev/disk/by-id/wwn-0x6001405abcdef
    present:
      description: Whether O(device) exists on this host.
      type: bool
      returned: always
      sample: true
    block:
      description: Whether it is a block device.
      type: bool
      returned: always
      sample: true
    kernel_name:
      description: The node it resolves to on this host.
      type: str
      returned: always
      sample: /dev/sdb
    partition:
      description: Whether it is a partition rather than a whole disk.
      type: bool
      returned: always
      sample: false
    wwn:
      description: The disk's WWN from sysfs or its C(wwn-) name (empty when the transport gives none).
      type: str
      returned: always
      sample: naa.6001405abcdef
    serial:
      description: The disk's serial number (empty when unknown).
      type: str
      returned: always
      sample: ""
    by_id:
      description: Every C(/dev/disk/by-id) name of the device on this host.
      type: list
      elements: str
      returned: always
      sample: [/dev/disk/by-id/scsi-36001405abcdef, /dev/disk/by-id/wwn-0x6001405abcdef]
    size:
      description: Size in bytes.
      type: int
      returned: always
      sample: 107374182400
    signature:
      description: What C(blkid -p) finds (type, label, uuid, pttype, usage, ambivalent); empty when blank.
      type: dict
      returned: always
      sample: {"type": "ocfs2", "label": "MyImageStorage.SAN1", "uuid": "8d734397-fe25-489d-a5ac-c0cb7daa61e7", "usage": "filesystem"}
volume:
  description:
    - The details view of the volume on this host, as M(flexvdi.storage.external_volume) returns it
      (status, mounted, in_fstab, size, free, fallocate, reflink, qemu_writable, images...), plus what the
      device tells.
  returned: unless O(identify=true)
  type: dict
  contains:
    name:
      description: Volume name.
      type: str
      returned: always
      sample: SAN1
    status:
      description: V(online), V(offline), V(unresponsive) or V(absent).
      type: str
      returned: always
      sample: online
    device:
      description: O(device).
      type: str
      returned: when present
      sample: /dev/disk/by-id/wwn-0x6001405abcdef
    kernel_name:
      description: The node O(device) resolves to on this host (null when it is missing).
      type: str
      returned: when present
      sample: /dev/sdb
    label:
      description: The OCFS2 label on the device.
      type: str
      returned: when present
      sample: MyImageStorage.SAN1
    uuid:
      description: The filesystem's UUID (null when unknown).
      type: str
      returned: when present
      sample: 8D734397FE25489DA5ACC0CB7DAA61E7
    cluster_name:
      description: The o2cb cluster the device is formatted for.
      type: str
      returned: when present
      sample: flexvdi
    mount_type:
      description: V(cluster), or V(local) for a volume formatted for one host (C(mkfs.ocfs2 -M local)).
      type: str
      returned: when present
      sample: cluster
    slots:
      description: Node slots of the device.
      type: int
      returned: when present
      sample: 4
    slots_used:
      description: Slots in use (C(debugfs.ocfs2 -R slotmap)).
      type: int
      returned: when present
      sample: 2
    nodes:
      description: The cluster's nodes that have it mounted (C(mounted.ocfs2 -f)).
      type: list
      elements: str
      returned: when present
      sample: [node1, node2]
    mount_point:
      description: Where the volume is.
      type: str
      returned: when present
      sample: /var/lib/flexvdi/volumes/MyImageStorage/SAN1
    mounted:
      description: Whether O(mount_point) is a mount point.
      type: bool
      returned: when present
      sample: true
    message:
      description: Why the volume is offline or not usable by qemu; empty when all is well.
      type: str
      returned: when present
      sample: ""
"""

from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

_payload.compile_once()  # first: every file imported below is compiled once (see _payload)

from ansible_collections.flexvdi.storage.plugins.module_utils import _module, _ocfs2


def main():
    _module.run_object(_module.ocfs2_volume_spec, _ocfs2.converge)


if __name__ == "__main__":
    main()
