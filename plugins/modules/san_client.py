#!/usr/bin/python
# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: san_client
short_description: Connect this host to iSCSI targets over every portal, one multipath map per LUN
version_added: 0.4.0
description:
  - Gives this host its own iSCSI initiator name (generated with C(iscsi-iname) when the file is missing or asks
    for one; O(initiator_name) sets it), writes C(multipath.conf) (maps named by WWID on every host,
    C(user_friendly_names no), every WWID blacklisted but the declared LUNs', so the host's own disks never become
    maps) and applies it with C(multipathd reconfigure), never a restart; then converges each of O(targets).
  - A target present gets one node record per DECLARED portal (C(iscsiadm -m node -o new), static, never the
    portals a discovery returns), with C(node.startup = automatic) (login at boot), the session timeouts and CHAP.
    Discovery (C(sendtargets), C(-o nonpersistent), which records nothing) runs only when a declared portal has no
    record, to check that the portal serves the target. The host logs in, one portal at a time, only where no
    session exists, then waits up to O(lun_timeout) seconds for each of the target's O(targets[].luns) to be one
    multipath map with one active path per portal; a LUN missing then is an error naming it.
  - The CHAP secret is written into the root-only node record file (C(/etc/iscsi/nodes/...), mode 0600, written
    whole to a temporary file and renamed), never passed in a command's arguments, never returned, logged, shown
    in a diff (masked) or written to the registry.
  - A failed run (wrong CHAP, an unreachable portal, a missing LUN) logs out the sessions and deletes the node
    records it made, and puts back the files it changed; the error names the option to fix.
  - V(absent) flushes the target's maps, logs out of its sessions one at a time and deletes its node records,
    refused while a mounted filesystem, a stacked device, a registered volume or a direct storage uses one of its
    LUNs, naming it.
  - The registry records each target's portals and each LUN's path count at converge (never a secret), so that
    M(flexvdi.storage.storage_info) reports a LUN with fewer active paths as redundancy lost.
  - The role C(flexvdi.storage.san_client) runs this module from C(flexvdi_san_targets).
  - The no-op run reads files only (the initiator name, node records, C(multipath.conf), sysfs, the registry).
author:
  - flexVDI storage team (@flexvdi)
extends_documentation_fragment:
  - flexvdi.storage.storage
  - flexvdi.storage.storage.attributes
options:
  targets:
    description: The iSCSI targets this host connects to (the role passes those whose hosts list this host).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: A unique label of the target in the declaration and the registry.
        type: str
        required: true
      iqn:
        description: The target's iSCSI name (C(iqn.yyyy-mm.reversed.domain[:unique]), lower case; or C(eui.)).
        type: str
        required: true
      portals:
        description:
          - The target's portals, each C(address) (an IP address, or a name resolved on the host) and C(port)
            (default 3260). Every portal is one path to each LUN; two portals on two networks survive a lost one.
        type: list
        elements: dict
      chap_username:
        description: CHAP user name (1 to 255 printable ASCII characters, no blank). Without it, no CHAP.
        type: str
      chap_password:
        description: CHAP secret, 12 to 255 printable ASCII characters without blanks (RFC 3720 and LIO's limits).
        type: str
      luns:
        description:
          - The WWIDs of the LUNs the target maps to this host, as multipath names them (C(36001405...)).
            Each must become one map C(/dev/disk/by-id/dm-uuid-mpath-<wwid>) with one path per portal.
        type: list
        elements: str
      state:
        description: V(present) connects; V(absent) disconnects and deletes the node records.
        type: str
        choices: [present, absent]
        default: present
      hosts:
        description: Ignored here (the role selects the targets of each host).
        type: list
        elements: str
      storage:
        description: Ignored here (the role selects the targets of each host).
        type: str
  initiator_name:
    description:
      - This host's initiator name. Unset, the current one is kept, or one is generated when there is none.
      - Changing it is refused while the host has iSCSI sessions.
    type: str
  replacement_timeout:
    description:
      - Seconds a session in recovery holds I/O before failing it to multipath (C(node.session.timeo.replacement_timeout)
        in the node record, and C(fast_io_fail_tmo) in C(multipath.conf), which multipathd writes into every iSCSI
        session it manages, overriding the record). Multipath needs it short (open-iscsi's default, 120, is for hosts
        without multipath); 5 is multipath-tools' own default on Debian.
    type: int
    default: 5
  noop_out_interval:
    description: Seconds between NOP-Out pings on a connection (C(node.conn[0].timeo.noop_out_interval)).
    type: int
    default: 5
  noop_out_timeout:
    description: Seconds a NOP-Out waits for its answer before the connection is failed.
    type: int
    default: 5
  login_timeout:
    description: Seconds one login may take (C(node.conn[0].timeo.login_timeout)); one try only, so a wrong CHAP or
      an unreachable portal is an error within 30 s. At most 25.
    type: int
    default: 15
  lun_timeout:
    description: Seconds to wait after a login for every declared LUN's map and paths.
    type: int
    default: 30
  manage_multipath:
    description: Write O(multipath_conf) and check the maps; V(false) for hosts without multipath (not for OCFS2).
    type: bool
    default: true
  polling_interval:
    description: multipathd's path checker interval, in seconds.
    type: int
    default: 5
  no_path_retry:
    description:
      - What a map does when every path is down, C(no_path_retry) of multipath.conf. A number queues I/O for that many
        checker intervals, then fails it (a small number, since o2cb fences a host that cannot write its heartbeat anyway);
        V(queue) queues forever, V(fail) fails at once.
    type: str
    default: "3"
  checker_timeout:
    description: Seconds the path checker's command may take.
    type: int
    default: 10
  heartbeat_threshold:
    description:
      - o2cb's heartbeat dead threshold, when OCFS2 runs on these LUNs; the run is refused when a path failover
        (O(noop_out_interval) + O(noop_out_timeout) + O(replacement_timeout) + O(polling_interval)) plus one 2 s
        heartbeat outlasts o2cb's dead time, (threshold - 1) x 2 s.
    type: int
  multipath_conf:
    description: multipath's configuration file, written whole.
    type: path
    default: /etc/multipath.conf
  multipathd_pidfile:
    description: multipathd's pid file (whether it runs, read without a command).
    type: path
    default: /run/multipathd.pid
  iscsi_dir:
    description: open-iscsi's configuration directory (C(initiatorname.iscsi), C(nodes/)). Change it only for tests.
    type: path
    default: /etc/iscsi
  sysfs:
    description: Where sysfs is mounted. Change it only for tests.
    type: path
    default: /sys
  services:
    description: Units whose enablement at boot is reported in RV(services) (the role enables them).
    type: list
    elements: str
    default: [iscsid.socket, open-iscsi.service, multipathd.service]
  packages:
    description: Packages whose absence is reported in RV(missing_packages), read from O(dpkg_status) (the role installs them).
    type: list
    elements: str
    default: []
  dpkg_status:
    description: dpkg's status file. Change it only for tests.
    type: path
    default: /var/lib/dpkg/status
seealso:
  - module: flexvdi.storage.ocfs2_volume
"""

EXAMPLES = r"""
- name: Connect to the array over both portals
  flexvdi.storage.san_client:
    targets:
      - name: array1
        iqn: iqn.2026-12.lab.flexvdi:san
        portals: [{address: 10.251.0.20}, {address: 10.251.1.20, port: 3260}]
        chap_username: flexvdi
        chap_password: "{{ vault_san_chap_password }}"
        luns: [36001405d2b5c4e1f8a7b3c9d0e1f2a3b]
  no_log: false   # chap_password is no_log already
"""

RETURN = r"""
actions:
  description: What was done, or in check mode would be done, in order.
  returned: always
  type: list
  elements: str
  sample:
    - create the node record of iqn.2026-12.lab.flexvdi:san at 10.251.0.20:3260 (login at boot, timeouts, CHAP)
    - log in to iqn.2026-12.lab.flexvdi:san at 10.251.0.20:3260
initiator_name:
  description: This host's initiator name (C((generated)) in check mode when one is to be generated).
  returned: success
  type: str
  sample: iqn.1993-08.org.debian:01:44a3ce7ab7c
targets:
  description: Each target, its LUNs with their map device, paths seen and active (read before this run's changes).
  returned: success
  type: list
  elements: dict
  sample:
    - name: array1
      iqn: iqn.2026-12.lab.flexvdi:san
      luns: [{wwid: 36001405d2b5c4e1f8a7b3c9d0e1f2a3b, device: /dev/disk/by-id/dm-uuid-mpath-36001405d2b5c4e1f8a7b3c9d0e1f2a3b,
              map: true, paths: 2, active: 2, expected: 2}]
missing_packages:
  description: Which of O(packages) dpkg does not have installed.
  returned: success
  type: list
  elements: str
  sample: [multipath-tools]
services:
  description: Which of O(services) are not enabled at boot.
  returned: success
  type: list
  elements: str
  sample: []
"""

from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

_payload.compile_once()  # first: every file imported below is compiled once (see _payload)

from ansible_collections.flexvdi.storage.plugins.module_utils import _module, _san


def main():
    spec = {
        "targets": {
            "type": "list",
            "elements": "dict",
            "default": [],
            # Suboptions, so Ansible masks every chap_password in what it logs and returns.
            "options": {
                "name": {"type": "str", "required": True},
                "iqn": {"type": "str", "required": True},
                "portals": {"type": "list", "elements": "dict"},
                "chap_username": {"type": "str"},
                "chap_password": {"type": "str", "no_log": True},
                "luns": {"type": "list", "elements": "str"},
                "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
                "hosts": {"type": "list", "elements": "str"},
                "storage": {"type": "str"},
            },
        },
        "initiator_name": {"type": "str"},
        "replacement_timeout": {"type": "int", "default": 5},
        "noop_out_interval": {"type": "int", "default": 5},
        "noop_out_timeout": {"type": "int", "default": 5},
        "login_timeout": {"type": "int", "default": 15},
        "lun_timeout": {"type": "int", "default": 30},
        "manage_multipath": {"type": "bool", "default": True},
        "polling_interval": {"type": "int", "default": 5},
        "no_path_retry": {"type": "str", "default": "3"},
        "checker_timeout": {"type": "int", "default": 10},
        "heartbeat_threshold": {"type": "int"},
        "multipath_conf": {"type": "path", "default": "/etc/multipath.conf"},
        "multipathd_pidfile": {"type": "path", "default": "/run/multipathd.pid"},
        "iscsi_dir": {"type": "path", "default": "/etc/iscsi"},
        "sysfs": {"type": "path", "default": "/sys"},
        "packages": {"type": "list", "elements": "str", "default": []},
        "dpkg_status": {"type": "path", "default": "/var/lib/dpkg/status"},
        "services": {
            "type": "list",
            "elements": "str",
            "default": ["iscsid.socket", "open-iscsi.service", "multipathd.service"],
        },
    }
    spec.update(_module.registry_args())
    _module.run(spec, _san.converge)


if __name__ == "__main__":
    main()
