#!/usr/bin/python
# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_storage
short_description: A flexVDI image storage, the space for guests' disk images on a set of hosts
version_added: 0.1.0
description:
  - Registers an image storage on the hosts listed in O(hosts) and prepares its root directory.
  - Run the same task over the whole inventory; on a host not listed any more the image storage
    is dropped from this host's registry and its volumes are unmounted there, with the same
    guards as O(state=absent) (guest images and files open by qemu stop it unless O(force)).
  - O(state=absent) refuses while volumes remain, unless O(force).
  - Guest images are never deleted.
author:
  - flexVDI storage team (@flexvdi)
extends_documentation_fragment:
  - flexvdi.storage.storage
  - flexvdi.storage.storage.state
  - flexvdi.storage.storage.mounts
  - flexvdi.storage.storage.attributes
options:
  name:
    description: Name of the image storage.
    type: str
    required: true
  hosts:
    description:
      - Inventory hostnames of the hosts that reach this image storage.
      - Every host must be in the inventory and be listed once; the action plugin checks it.
      - The storage's whole host set, as declared (write it out, for example from a group), never
        the hosts of the current run, which C(--limit), C(serial) or AWX job slicing shrink.
      - May be left out only when the inventory has a single host (it then means this host alone),
        and never for a storage registered here with other hosts.
    type: list
    elements: str
  root:
    description:
      - Directory under which the collection mounts the volumes it manages (OCFS2, Gluster).
      - Defaults to C(/var/lib/flexvdi/volumes/<name>).
    type: path
seealso:
  - module: flexvdi.storage.external_volume
  - module: flexvdi.storage.storage_info
"""

EXAMPLES = r"""
- name: Image storage on this host, as in flexVDI's getting started guide
  flexvdi.storage.image_storage:
    name: MyImageStorage

- name: Image storage shared by the VDI hosts (run over the whole inventory)
  flexvdi.storage.image_storage:
    name: SAN
    hosts: "{{ groups['vdi_hosts'] }}"

- name: Remove an image storage whose volumes are already gone
  flexvdi.storage.image_storage:
    name: Old
    state: absent
"""

RETURN = r"""
actions:
  description: What was done, or in check mode would be done, in order.
  returned: always
  type: list
  elements: str
  sample: ["create directory /var/lib/flexvdi/volumes/MyImageStorage", "update /etc/flexvdi/storage.json"]
image_storage:
  description: The image storage as this host sees it after the run.
  returned: always
  type: dict
  contains:
    name:
      description: >-
        Name.
      type: str
      returned: always
      sample: MyImageStorage
    member:
      description: >-
        Whether this host takes part in it.
      type: bool
      returned: always
      sample: true
    hosts:
      description: >-
        Hosts of the image storage.
      type: list
      elements: str
      returned: always
      sample: [node1, node2]
    root:
      description: >-
        Root directory of managed volumes.
      type: str
      returned: always
      sample: /var/lib/flexvdi/volumes/MyImageStorage
    volumes:
      description: >-
        Names of its volumes registered on this host.
      type: list
      elements: str
      returned: always
      sample: [MyExternalVolume]
"""

from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

_payload.compile_once()  # first: every file imported below is compiled once (see _payload)

from ansible_collections.flexvdi.storage.plugins.module_utils import _image_storage, _module


def main():
    _module.run_object(_module.image_storage_spec, _image_storage.converge)


if __name__ == "__main__":
    main()
