#!/usr/bin/python
# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: media_storage
short_description: A flexVDI media storage, a CIFS share of ISO images and FVM exports
version_added: 0.1.0
description:
  - Mounts a CIFS/SMB share on the hosts listed in O(hosts), keeps it in fstab with C(_netdev)
    and C(nofail), readable by the qemu user, and lists its ISO images and FVM files, like
    flexVDI's media storage details view.
  - The password lives only in a root-owned 0600 credentials file named in fstab with
    C(credentials=); never in argv, fstab, the registry, results or logs. Changing it rewrites the
    file and remounts.
  - Before mounting, the server and the credentials are checked with C(smbclient) under a
    timeout, so a wrong password or an unreachable server is a clear error in seconds and
    nothing is left behind.
  - A media storage whose server is this very host is bind-mounted from the share's directory
    (read from O(samba_config)) instead of CIFS over loopback; it reports C(transport=local).
  - Run the same task over the whole inventory; on a host not listed any more it is unmounted
    and unregistered (files open by qemu stop it unless O(force)); a mount that is not this
    storage's is left alone. Files are never deleted.
  - In check mode on a fresh host, where C(smbclient) or C(mount.cifs) (or, for a local share,
    the Samba configuration) are not installed yet, the checks that need them are skipped with
    a warning that says what a real run does; a real run without them fails before anything is written.
author:
  - flexVDI storage team (@flexvdi)
requirements:
  - cifs-utils and smbclient on the hosts (role flexvdi.storage.cifs_client)
extends_documentation_fragment:
  - flexvdi.storage.storage
  - flexvdi.storage.storage.state
  - flexvdi.storage.storage.mounts
  - flexvdi.storage.storage.qemu
  - flexvdi.storage.storage.attributes
options:
  name:
    description: Name of the media storage (flexVDI's getting started calls it C(cifs)).
    type: str
    required: true
  server:
    description: IP address or hostname of the SMB server. Required with O(state=present).
    type: str
  share:
    description: Name of the share on O(server). Required with O(state=present).
    type: str
  username:
    description: SMB user. Required with O(state=present).
    type: str
  password:
    description: Password of O(username). Kept only in the credentials file.
    type: str
  domain:
    description: SMB domain or workgroup of O(username).
    type: str
  vers:
    description:
      - SMB dialect to mount with. SMB1 (C(1.0)) is refused.
    type: str
    default: "3.1.1"
  port:
    description: TCP port of the SMB server (1-65535).
    type: int
    default: 445
  hosts:
    description:
      - Inventory hostnames of the hosts that mount it.
      - The storage's whole host set, as declared (write it out, for example from a group), never
        the hosts of the current run, which C(--limit), C(serial) or AWX job slicing shrink.
      - May be left out only when the inventory has a single host (it then means this host alone),
        and never for a storage registered here with other hosts.
    type: list
    elements: str
  mount_point:
    description: Where it is mounted. Defaults to C(/var/lib/flexvdi/media/<name>).
    type: path
  read_only:
    description: Mount it read-only (guests only read media; FVM exports need it writable).
    type: bool
    default: false
  samba_config:
    description: The Samba configuration that tells the share's directory when O(server) is this host.
    type: path
    default: /etc/samba/smb.conf
  list_all_files:
    description:
      - List every ISO and FVM file of the media storage in C(files).
      - By default C(files) holds the first 100 by name, and C(files_count), C(files_size) and
        C(files_truncated) tell the rest, so that a share of thousands of images still fits in
        one AWX job event (AWX blanks a result over 700,000 bytes).
    type: bool
    default: false
seealso:
  - module: flexvdi.storage.storage_info
"""

EXAMPLES = r"""
- name: The media storage of flexVDI's getting started, served by the first host
  flexvdi.storage.media_storage:
    name: cifs
    server: 192.0.2.10
    share: media
    username: flexvdi
    password: "{{ vault_media_password }}"
    hosts: "{{ groups['vdi_hosts'] }}"

- name: Drop it from every host (the files on the server stay)
  flexvdi.storage.media_storage:
    name: cifs
    state: absent
"""

RETURN = r"""
actions:
  description: What was done, or in check mode would be done, in order. Never contains a secret.
  returned: always
  type: list
  elements: str
  sample:
    - create directory /etc/flexvdi/credentials
    - write credentials file /etc/flexvdi/credentials/cifs.cred (0600, root)
    - create directory /var/lib/flexvdi/media/cifs
    - update /etc/fstab
    - mount //192.0.2.10/media on /var/lib/flexvdi/media/cifs (cifs)
    - update /etc/flexvdi/storage.json
media_storage:
  description: The details view of the media storage on this host.
  returned: always
  type: dict
  contains:
    name:
      description: >-
        Name.
      type: str
      returned: always
      sample: cifs
    server:
      description: >-
        Server.
      type: str
      returned: when present
      sample: 192.0.2.10
    share:
      description: >-
        Share.
      type: str
      returned: when present
      sample: media
    hosts:
      description: >-
        Hosts that mount it.
      type: list
      elements: str
      returned: always
      sample: [node1, node2]
    mount_point:
      description: >-
        Where it is mounted.
      type: str
      returned: when present
      sample: /var/lib/flexvdi/media/cifs
    transport:
      description: V(cifs), or V(local) when the server is this host and the share is bind-mounted.
      type: str
      returned: when present
      sample: cifs
    read_only:
      description: >-
        Whether it is mounted read-only.
      type: bool
      returned: when present
      sample: false
    mounted:
      description: >-
        Whether the mount point is mounted.
      type: bool
      returned: when present
      sample: true
    in_fstab:
      description: Whether fstab has an entry for the mount point, so that it is mounted at boot.
      type: bool
      returned: when present
      sample: true
    status:
      description: >-
        V(online), V(offline), V(error), V(unresponsive) (the share did not answer within 10 seconds:
        its server is down) or V(absent).
      type: str
      returned: always
      sample: online
    message:
      description: >-
        Why it is offline or in error; empty when online.
      type: str
      returned: when present
      sample: ""
    last_operation:
      description: The last change on this host, with its message and UTC time.
      type: dict
      returned: when present
      sample: {"message": "mounted //192.0.2.10/media on /var/lib/flexvdi/media/cifs", "time": "2026-11-23T19:50:00Z"}
    files:
      description:
        - ISO images and FVM files, with path relative to the share, size and modification time; sorted by name.
        - The first 100 only, unless O(list_all_files) is set.
      type: list
      elements: dict
      returned: when present
      sample: [{"name": "debian-12.iso", "type": "iso", "size": 658505728, "mtime": 1763927400}]
    files_count:
      description: How many ISO images and FVM files the share holds, listed or not.
      type: int
      returned: when present
      sample: 1
    files_size:
      description: Their total size in bytes.
      type: int
      returned: when present
      sample: 658505728
    files_truncated:
      description: Whether C(files) lists fewer than C(files_count) (set O(list_all_files) for all).
      type: bool
      returned: when present
      sample: false
"""

from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

_payload.compile_once()  # first: every file imported below is compiled once (see _payload)

from ansible_collections.flexvdi.storage.plugins.module_utils import _media, _module


def main():
    _module.run_object(_module.media_storage_spec, _media.converge)


if __name__ == "__main__":
    main()
