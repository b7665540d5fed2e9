#!/usr/bin/python
# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: storage_info
short_description: The storage tree and details view of a flexVDI host
version_added: 0.1.0
description:
  - Everything in this host's registry with its live status, like flexVDI's tree and details
    views; for reports and AWX surveys.
  - It only reads; nothing is written into any volume. fallocate and reflink support are read
    from the filesystem type and its features (the XFS and OCFS2 superblocks, the NFS version),
    and qemu access is asked of the kernel with access(2) by a child process running as the qemu
    user. O(probe=false) skips space, capabilities, qemu access and the image lists.
  - Every look inside a network or cluster filesystem (NFS, CIFS, Gluster, OCFS2...) runs in a
    child process bounded to 10 seconds, so a dead server never hangs the run; the volume or media
    storage is reported V(unresponsive), with a message naming the server.
  - A Gluster volume whose FUSE client died (C(Transport endpoint is not connected)) is reported
    V(stale), and also lists its bricks with the host holding each and whether it is online, and
    the entries pending heal (see M(flexvdi.storage.gluster_volume)); these come from
    C(gluster --xml), bounded in time, and only with O(probe=true).
author:
  - flexVDI storage team (@flexvdi)
extends_documentation_fragment:
  - flexvdi.storage.storage
  - flexvdi.storage.storage.read_attributes
  - flexvdi.storage.storage.action_group
options:
  probe:
    description: Measure space, fallocate and reflink support, qemu access and list the images of each online volume.
    type: bool
    default: true
  fstab:
    description:
      - The fstab file read to tell, for each volume and media storage, whether it is mounted at boot
        (C(in_fstab) of each volume and media storage). Accepting it lets C(group/flexvdi.storage.all)
        module defaults carry the same O(fstab) as the converging modules.
    type: path
    default: /etc/fstab
  qemu_user:
    description:
      - The hypervisor's user whose access is verified.
      - When not set, the first existing of C(libvirt-qemu) and C(qemu).
    type: str
  list_all_files:
    description:
      - List every ISO and FVM file of each media storage in C(files).
      - By default C(files) holds the first 100 by name, and C(files_count), C(files_size) and
        C(files_truncated) tell the rest, so that a share of thousands of images still fits in
        one AWX job event (AWX blanks a result over 700,000 bytes).
    type: bool
    default: false
  samba_config:
    description:
      - The Samba config read for the media shares this host serves (those the C(flexvdi.storage.media_server)
        role wrote, between its marker lines), returned in C(media_shares).
    type: path
    default: /etc/samba/smb.conf
notes:
  - Supports check mode; it never changes anything, in check mode or not.
seealso:
  - module: flexvdi.storage.image_storage
  - module: flexvdi.storage.external_volume
"""

EXAMPLES = r"""
- name: Read the storage tree of every host
  flexvdi.storage.storage_info:
  register: storage

- name: Show the volumes that are not online
  ansible.builtin.debug:
    msg: "{{ storage.image_storages | map(attribute='volumes') | flatten | rejectattr('status', 'eq', 'online') }}"
"""

RETURN = r"""
registry:
  description: Path of the registry that was read.
  returned: always
  type: str
  sample: /etc/flexvdi/storage.json
image_storages:
  description:
    - Image storages with their volumes' details (see the RV(flexvdi.storage.external_volume#module:volume) return value).
    - A Gluster volume also has C(auth_allow), the addresses that may mount it (V(["*"]) when every address may; see
      RV(flexvdi.storage.gluster_volume#module:volume)).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "MyImageStorage", "hosts": ["localhost"], "root": "/var/lib/flexvdi/volumes/MyImageStorage", "volumes": []}]
media_storages:
  description:
    - Media storages registered on this host (see the RV(flexvdi.storage.media_storage#module:media_storage) return value).
    - Each lists its first 100 files by name with their count and total size, unless O(list_all_files) is set.
  returned: always
  type: list
  elements: dict
  sample: []
media_shares:
  description:
    - The media shares this host serves, as the C(flexvdi.storage.media_server) role wrote them in O(samba_config),
      with who may connect (C(hosts_allow); V(["*"]) when every address may). Empty when it serves none.
  returned: always
  type: list
  elements: dict
  sample: [{"share": "media", "path": "/srv/flexvdi/media", "hosts_allow": ["127.0.0.1", "::1", "10.0.0.11"]}]
direct_storages:
  description:
    - Direct storages registered on this host, as RV(flexvdi.storage.direct_storage#module:direct_storage) gives them
      (name, host, status, device, kernel_name, size, model, serial, wwn, rule, rule_present, qemu_access, message).
    - With O(probe=false) the qemu user's access is not verified (C(qemu_access) null).
  returned: always
  type: list
  elements: dict
  sample:
    - name: fastdisk
      host: node1
      status: online
      device: /dev/disk/by-id/nvme-SAMSUNG_MZ7LH1T9_S455NY0M123456
      kernel_name: /dev/nvme0n1
      size: 1920383410176
      model: SAMSUNG MZ7LH1T9
      serial: S455NY0M123456
      wwn: eui.0025388b81b2c3d4
      rule: /etc/udev/rules.d/90-flexvdi-direct-fastdisk.rules
      rule_present: true
      qemu_access: true
      message: ""
san_targets:
  description:
    - The SAN targets this host is connected to (M(flexvdi.storage.san_client)), only when there are any. Each LUN
      has its multipath map's device, whether the map exists, its paths now (C(paths), C(active) = usable in sysfs,
      C(path_states)) and C(converged_paths), the paths it had when converged; fewer active paths than that is
      redundancy lost, which the cluster report flags.
  returned: when SAN targets are registered
  type: list
  elements: dict
  sample:
    - name: array1
      iqn: iqn.2026-12.lab.flexvdi:san
      portals: [10.251.0.20:3260, 10.251.1.20:3260]
      luns:
        - wwid: 36001405d2b5c4e1f8a7b3c9d0e1f2a3b
          device: /dev/disk/by-id/dm-uuid-mpath-36001405d2b5c4e1f8a7b3c9d0e1f2a3b
          map: true
          paths: 2
          active: 1
          converged_paths: 2
          path_states: {sdb: running, sdc: transport-offline}
"""

from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

_payload.compile_once()  # first: every file imported below is compiled once (see _payload)

from ansible_collections.flexvdi.storage.plugins.module_utils import _info, _module


def main():
    spec = {"probe": {"type": "bool", "default": True}, "qemu_user": {"type": "str"}}
    spec["list_all_files"] = {"type": "bool", "default": False}
    spec["samba_config"] = {"type": "path", "default": "/etc/samba/smb.conf"}
    spec.update(_module.registry_args(), **_module.mount_args())
    _module.run(spec, _info.gather)


if __name__ == "__main__":
    main()
