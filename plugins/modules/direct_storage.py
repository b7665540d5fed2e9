#!/usr/bin/python
# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: direct_storage
short_description: A flexVDI direct storage, one host's physical disk given whole to guests
version_added: 0.2.0
description:
  - Registers a whole disk of one host (O(host)) for guests to use directly, and gives the qemu user
    access to it with a udev rule, so the access survives reboots (a C(chmod) would not).
  - Registering writes nothing to the disk. Before anything is written on the host the disk is checked.
    A disk this host uses is refused, with or without O(force), naming the reason and the fix. It may be
    mounted (the disk or a partition of it), active swap, held by device-mapper or md (LVM, RAID,
    multipath, dm-crypt), the device of a registered volume, or another direct storage.
  - A disk that carries data is refused unless O(force=true). Data here means partitions, an LVM physical
    volume or RAID member signature (not active), a filesystem or any other signature C(blkid -p) finds.
    A partition, a missing device, or a path outside C(/dev/disk/by-id) are always refused.
  - The rule (C(<udev_rules_dir>/90-flexvdi-direct-<name>.rules)) matches the whole disk by its WWN
    (C(ATTRS{wwid})) or else its serial number (C(ATTRS{serial})) from sysfs, and gives it to the qemu user
    (owner, group C(disk), mode 0660). A multipath map of a SAN LUN (for example
    C(/dev/disk/by-id/dm-uuid-mpath-<wwid>)) has neither in sysfs; it is matched by its device-mapper UUID
    (C(ENV{DM_UUID}), C(mpath-<wwid>)), the same on every host and boot. A disk with none of these is
    refused, because after a reboot its kernel name may be another disk's. A loop device has none either;
    it is matched by its backing file (C(ATTR{loop/backing_file})), which is how the tests prove the module
    on loop devices.
  - The module then has udev apply its rules (C(udevadm control --reload), then C(udevadm trigger --settle
    --action=change) for that disk, which waits for that disk's event only, up to 30 seconds) and verifies
    that the qemu user can open the disk for reading and writing (a child process running as that user
    opens it), before it records the storage in the registry. If the verification fails, the rule is
    removed again and nothing is registered.
  - Run on a host that is not O(host), it removes the storage from that host if it was registered there
    (the declaration moved the disk to another host).
  - V(absent) removes the rule, has udev apply the system's own rules to the disk again, and unregisters
    it. The disk's data is untouched.
author:
  - flexVDI storage team (@flexvdi)
extends_documentation_fragment:
  - flexvdi.storage.storage
  - flexvdi.storage.storage.state
  - flexvdi.storage.storage.qemu
  - flexvdi.storage.storage.attributes
options:
  name:
    description: Name of the direct storage, unique in the cluster.
    type: str
    required: true
  host:
    description:
      - The inventory hostname of the one host whose disk this is.
      - Defaults to the host the task runs on.
    type: str
  device:
    description:
      - The disk, by a name in C(/dev/disk/by-id/) (for example V(/dev/disk/by-id/nvme-SAMSUNG_MZ7LH1T9_S455NY0M123456)).
        Kernel names such as V(/dev/sdb) change between boots and are refused.
      - Required with O(state=present).
    type: str
  force:
    description:
      - Register a disk that carries data (partitions, a filesystem, an inactive LVM physical volume or RAID
        member, any signature); guests get it as it is. Nothing is ever written to the disk.
      - A disk this host uses (mounted, active swap, held by LVM or RAID, a registered volume) is refused even so.
  fstab:
    description:
      - Not read; a direct storage has no fstab entry. Accepting it lets C(group/flexvdi.storage.all) module
        defaults carry the O(flexvdi.storage.external_volume#module:fstab) of the other modules.
    type: path
    default: /etc/fstab
  udev_rules_dir:
    description:
      - The directory the udev rule is written to. Change it only for tests; udev reads V(/etc/udev/rules.d).
    type: path
    default: /etc/udev/rules.d
notes:
  - Needs systemd-udevd running on the host; without it the module fails before writing anything.
seealso:
  - module: flexvdi.storage.storage_info
"""

EXAMPLES = r"""
- name: Give the NVMe disk of node1 to guests
  flexvdi.storage.direct_storage:
    name: fastdisk
    host: node1
    device: /dev/disk/by-id/nvme-SAMSUNG_MZ7LH1T9_S455NY0M123456

- name: Give back a disk that carries an old guest's partitions (nothing is written to it)
  flexvdi.storage.direct_storage:
    name: olddisk
    device: /dev/disk/by-id/wwn-0x5000c500a1b2c3d4
    force: true

- name: Remove it (the udev rule and the registration; the disk's data stays)
  flexvdi.storage.direct_storage:
    name: fastdisk
    state: absent
"""

RETURN = r"""
actions:
  description: What was done, or in check mode would be done, in order.
  returned: always
  type: list
  elements: str
  sample:
    - create directory /etc/udev/rules.d
    - update /etc/udev/rules.d/90-flexvdi-direct-fastdisk.rules
    - apply udev rules to /dev/nvme0n1 (udevadm control --reload, trigger --settle) and verify that the qemu user libvirt-qemu can open it
    - update /etc/flexvdi/storage.json
direct_storage:
  description: The details view of the direct storage on this host.
  returned: always
  type: dict
  contains:
    name:
      description: O(name).
      type: str
      returned: always
      sample: fastdisk
    host:
      description: The host whose disk it is.
      type: str
      returned: always
      sample: node1
    status:
      description:
        - V(online) (present, rule in place, the qemu user can open it), V(offline) (missing, no rule, or no
          access), V(error) (this host has it mounted), or V(absent) (not registered on this host).
      type: str
      returned: always
      sample: online
    device:
      description: O(device).
      type: str
      returned: when registered here
      sample: /dev/disk/by-id/nvme-SAMSUNG_MZ7LH1T9_S455NY0M123456
    kernel_name:
      description: The node O(device) resolves to on this host (null when missing).
      type: str
      returned: when registered here
      sample: /dev/nvme0n1
    size:
      description: Size in bytes.
      type: int
      returned: when registered here
      sample: 1920383410176
    model:
      description: Vendor and model from sysfs (empty when the disk tells none).
      type: str
      returned: when registered here
      sample: SAMSUNG MZ7LH1T9
    serial:
      description: Serial number (empty when unknown).
      type: str
      returned: when registered here
      sample: S455NY0M123456
    wwn:
      description: WWN (empty when unknown).
      type: str
      returned: when registered here
      sample: eui.0025388b81b2c3d4
    rule:
      description: Path of the udev rule.
      type: str
      returned: when registered here
      sample: /etc/udev/rules.d/90-flexvdi-direct-fastdisk.rules
    rule_present:
      description: Whether the rule file exists.
      type: bool
      returned: when registered here
      sample: true
    qemu_access:
      description: Whether the qemu user can open the disk for reading and writing (null when not verified).
      type: bool
      returned: when registered here
      sample: true
    message:
      description: Why it is not online; empty when all is well.
      type: str
      returned: when registered here
      sample: ""
"""

from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

_payload.compile_once()  # first: every file imported below is compiled once (see _payload)

from ansible_collections.flexvdi.storage.plugins.module_utils import _direct, _module


def main():
    _module.run_object(_module.direct_storage_spec, _direct.converge)


if __name__ == "__main__":
    main()
