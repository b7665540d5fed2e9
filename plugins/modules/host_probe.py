#!/usr/bin/python
# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_probe
short_description: Read in one execution what a flexvdi.storage cluster role decides from
version_added: 0.1.0
description:
  - Internal to the collection's cluster roles (ocfs2_cluster, gluster_cluster, cifs_client, media_server), which
    run it as their first task on each host; its options and results may change with them.
  - Reads the OS, which packages dpkg has installed, which commands are on C(PATH) and a service's state,
    and, when asked, a role's own state (o2cb's files, configfs and OCFS2 mounts; the Gluster trusted pool;
    Samba's smb.conf, share user, directory and password), so that a role run with nothing to change
    executes this module alone on the host.
  - It only reads. The programs it may run are C(systemctl is-active), C(gluster pool list), C(testparm)
    and C(pdbedit), the last never on a passdb that does not exist (it would create it).
author:
  - flexVDI storage team (@flexvdi)
extends_documentation_fragment:
  - flexvdi.storage.storage.read_attributes
options:
  packages:
    description:
      - Packages as apt takes them (V(name), V(name:arch), V(name=version)); RV(missing_packages) are those dpkg
        does not have installed. A pattern, a C(.deb) file or a version range counts as missing (apt decides).
    type: list
    elements: str
    default: []
  dpkg_status:
    description: dpkg's status file.
    type: path
    default: /var/lib/dpkg/status
  commands:
    description: Commands whose absence from C(PATH) and the sbin directories RV(missing_commands) reports.
    type: list
    elements: str
    default: []
  service:
    description: The service whose state RV(service) reports; none when empty.
    type: str
    default: ""
  ocfs2:
    description: Read o2cb's files, the running o2cb cluster and the OCFS2 mounts (RV(conf_text) and the others).
    type: dict
    suboptions:
      conf:
        description: The cluster.conf file.
        type: path
        required: true
      defaults:
        description: o2cb's settings file.
        type: path
        required: true
      configfs:
        description: Where configfs is mounted.
        type: path
        default: /sys/kernel/config
      mountinfo:
        description: The mount table.
        type: path
        default: /proc/self/mountinfo
  gluster_pool:
    description: Run C(gluster --mode=script --xml pool list) and return it as RV(pool).
    type: bool
    default: false
  samba:
    description:
      - Read smb.conf, the share user and directory, and whether the user's Samba password is the one given
        (RV(config) and the others).
      - The password is compared with the NT hash in the passdb within the module; it never reaches a command
        line, a result or a log.
    type: dict
    suboptions:
      config:
        description: smb.conf.
        type: path
        required: true
      share:
        description: The share whose C(path) testparm reads back.
        type: str
        required: true
      user:
        description: The share's user.
        type: str
        required: true
      password:
        description: The user's Samba password, compared with the passdb's.
        type: str
        required: true
      path:
        description: The share's directory.
        type: path
        required: true
      stock:
        description: Debian's stock smb.conf.
        type: path
        default: /usr/share/samba/smb.conf
      hashfile:
        description: ucf's hash file, where the md5 of the smb.conf it installed is recorded.
        type: path
        default: /var/lib/ucf/hashfile
notes:
  - Never changes anything; C(changed) is always false.
seealso:
  - module: flexvdi.storage.storage_info
"""

EXAMPLES = r"""
- name: Read which Samba packages are missing and the state of smbd
  flexvdi.storage.host_probe:
    packages: [samba, smbclient]
    commands: [smbd, testparm]
    service: smbd
  register: probe

- name: Install only what dpkg lacks
  ansible.builtin.apt:
    name: "{{ probe.missing_packages }}"
  when: probe.missing_packages | length > 0
"""

RETURN = r"""
debian:
  description: Whether C(/etc/os-release) names Debian or a derivative (C(ID) or C(ID_LIKE)).
  returned: always
  type: bool
  sample: true
os_name:
  description: The OS's C(PRETTY_NAME).
  returned: always
  type: str
  sample: Debian GNU/Linux 12 (bookworm)
missing_packages:
  description: The entries of O(packages) that dpkg does not have installed (held packages count as installed).
  returned: always
  type: list
  elements: str
  sample: [smbclient]
missing_commands:
  description: The entries of O(commands) found neither on C(PATH) nor in the sbin directories.
  returned: always
  type: list
  elements: str
  sample: []
service:
  description:
    - The state of O(service); null when not asked or without systemd.
    - C(enabled) is read from the links C(systemctl enable) makes (false when unsure), C(active) from
      C(systemctl is-active).
  returned: always
  type: dict
  sample: {"active": true, "enabled": true}
nodename:
  description: The kernel's host name, which o2cb takes as the local node's name.
  returned: when O(ocfs2) is set
  type: str
  sample: node1
conf_text:
  description: The text of cluster.conf; null when there is none. C(defaults_text) likewise for o2cb's settings.
  returned: when O(ocfs2) is set
  type: str
  sample: "cluster:\n\tname = flexvdi\n"
conf_file:
  description: cluster.conf's type, mode and owner; null when there is none. C(defaults_file) likewise.
  returned: when O(ocfs2) is set
  type: dict
  sample: {"regular": true, "mode": "0644", "uid": 0, "gid": 0}
missing_dirs:
  description: The directories of the two files that do not exist.
  returned: when O(ocfs2) is set
  type: list
  elements: str
  sample: []
live:
  description: The clusters the running o2cb has in configfs, with their nodes, local node and timeouts.
  returned: when O(ocfs2) is set
  type: dict
  sample: {"flexvdi": {"nodes": {"node1": {"number": 0, "address": "192.0.2.11", "port": 7777}},
           "local_node": "node1", "timeouts": {"heartbeat_threshold": 31}}}
mounts:
  description: The OCFS2 mounts (C(cluster) false for a local one, C(heartbeat=none)).
  returned: when O(ocfs2) is set
  type: list
  elements: dict
  sample: [{"source": "/dev/sdb", "mount_point": "/srv/ocfs2", "cluster": true}]
pool:
  description: C(rc), C(stdout) and C(stderr) of C(gluster --mode=script --xml pool list).
  returned: when O(gluster_pool) is true
  type: dict
  sample: {"rc": 0, "stdout": "<cliOutput>...</cliOutput>", "stderr": ""}
config:
  description:
    - smb.conf, base64; null when there is none. C(config_md5) its md5, C(config_dir) whether its directory
      exists, C(stock) Debian's stock smb.conf (base64), C(ucf_md5) the md5 ucf recorded for smb.conf.
  returned: when O(samba) is set
  type: str
  sample: W2dsb2JhbF0K
readback:
  description:
    - C(server min protocol) of C([global]) and C(path) of the share as testparm reads them, each
      C(rc) and C(stdout); null without smb.conf or the Samba commands.
  returned: when O(samba) is set
  type: list
  elements: dict
  sample: [{"rc": 0, "stdout": "SMB2_10\n"}, {"rc": 0, "stdout": "/srv/media\n"}]
password:
  description:
    - 0 when the user's Samba password is O(samba.password) and the account is enabled, 1 when not (or no
      user, passdb or smb.conf yet), 3 on error (C(password_error) says which, never the password);
      null without the Samba commands.
  returned: when O(samba) is set
  type: int
  sample: 0
user:
  description: The share user's C(shell) and C(home); null when there is no such user.
  returned: when O(samba) is set
  type: dict
  sample: {"shell": "/usr/sbin/nologin", "home": "/nonexistent"}
directory:
  description: The share directory's C(isdir), C(owner), C(group) and C(mode); null when nothing is there.
  returned: when O(samba) is set
  type: dict
  sample: {"isdir": true, "owner": "flexvdi", "group": "flexvdi", "mode": 1528}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

_payload.compile_once()  # first: every file imported below is compiled once (see _payload)

from ansible_collections.flexvdi.storage.plugins.module_utils import _hostprobe


def main():
    path = {"type": "path", "required": True}
    spec = {
        "packages": {"type": "list", "elements": "str", "default": []},
        "dpkg_status": {"type": "path", "default": _hostprobe.DPKG_STATUS},
        "commands": {"type": "list", "elements": "str", "default": []},
        "service": {"type": "str", "default": ""},
        "ocfs2": {"type": "dict", "options": {
            "conf": dict(path), "defaults": dict(path),
            "configfs": {"type": "path", "default": "/sys/kernel/config"},
            "mountinfo": {"type": "path", "default": "/proc/self/mountinfo"},
        }},
        "gluster_pool": {"type": "bool", "default": False},
        "samba": {"type": "dict", "options": {
            "config": dict(path), "share": {"type": "str", "required": True}, "user": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True}, "path": dict(path),
            "stock": {"type": "path", "default": "/usr/share/samba/smb.conf"},
            "hashfile": {"type": "path", "default": "/var/lib/ucf/hashfile"},
        }},
    }  # fmt: skip
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    module.exit_json(changed=False, **_hostprobe.gather(module))


if __name__ == "__main__":
    main()
