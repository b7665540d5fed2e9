#!/usr/bin/python
# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: storage
short_description: A host's whole storage declaration, converged in one run
version_added: 0.4.0
description:
  - Converges everything one host has, in one module run — image storages and their volumes of every type
    (external, OCFS2, Gluster), media storages, direct storages, and the ones declared absent. The role
    C(flexvdi.storage.storage) runs it; the declaration is the role's (see its argument spec).
  - Each object is checked against the argument spec of its own module (M(flexvdi.storage.image_storage),
    M(flexvdi.storage.external_volume), M(flexvdi.storage.ocfs2_volume), M(flexvdi.storage.gluster_volume),
    M(flexvdi.storage.media_storage), M(flexvdi.storage.direct_storage)) and converged by that module's own
    planner — the same rules, refusals and messages. A declaration with any argument error is refused whole,
    before anything is done, naming every bad object and option at once.
  - Objects are converged in dependency order (storages, volumes to remove, volumes to keep, media storages,
    direct storages, storages to remove). A failed object's own steps are undone, the objects that do not
    depend on it stay converged, the ones that do are skipped, and the task fails naming every failed object.
    The registry and the fstab are written once, at the end (and C(systemctl daemon-reload) run once).
  - The steps that cross hosts are phases, each one run of this module per host, so that no host waits inside
    a module for another. O(phase=identify) reads what the host sees at every OCFS2 device (it changes nothing
    and runs in check mode too). O(phase=create) runs on the first host of each image storage only (the action
    plugin skips the others without a module run) and formats the blank OCFS2 devices and creates and starts
    the Gluster volumes. O(phase=converge) does the rest, and there nobody formats or creates, and a volume whose
    first host did not create it in this run fails at once, naming that host and why, unless the play runs
    the C(free) strategy (then it waits up to O(wait_timeout)).
author:
  - flexVDI storage team (@flexvdi)
extends_documentation_fragment:
  - flexvdi.storage.storage
  - flexvdi.storage.storage.mounts
  - flexvdi.storage.storage.qemu
  - flexvdi.storage.storage.attributes
options:
  image_storages:
    description:
      - The image storages, with their volumes, as the role's C(flexvdi_image_storages).
      - Each takes the options of M(flexvdi.storage.image_storage) (C(name), C(hosts), C(root), C(state),
        C(force)) and C(volumes), a list of volumes each with C(type) (V(external), V(ocfs2), V(gluster)) and
        the options of that type's module, without C(image_storage).
    type: list
    elements: dict
    default: []
  media_storages:
    description:
      - The media storages, as the role's C(flexvdi_media_storages); each takes the options of
        M(flexvdi.storage.media_storage). The action plugin moves each password out of the declaration into
        a no_log option before the module runs.
    type: list
    elements: dict
    default: []
  direct_storages:
    description: The direct storages, as the role's C(flexvdi_direct_storages); each takes the options of M(flexvdi.storage.direct_storage).
    type: list
    elements: dict
    default: []
  phase:
    description:
      - V(identify) reads what this host sees at each OCFS2 device; V(create) formats and creates on the first
        host of each storage; V(converge) converges everything.
    type: str
    choices: [identify, create, converge]
    default: converge
  wait_timeout:
    description:
      - Seconds the converge phase waits for a storage's first host to format or create a volume. Set by the
        action plugin under the C(free) strategy only; 0 fails at once.
    type: int
    default: 0
  creators:
    description:
      - Set by the action plugin. By image storage, why its first host did not run the create phase in this
        run (empty when it did).
    type: dict
  refused:
    description:
      - Set by the action plugin. By C(<image storage>/<volume>), why the hosts of an OCFS2 volume do not see
        the same disk; that volume fails without being touched.
    type: dict
  identified_by:
    description:
      - Set by the action plugin. The variable whose O(phase=identify) results were compared across hosts.
    type: str
  created_by:
    description:
      - The variable where the create phase's results are registered (the role sets it); the converge phase
        reads each storage's first host's there, to say why a volume it needs is not created.
    type: str
  media_passwords:
    description: Set by the action plugin. The media storages' passwords, by name.
    type: dict
notes:
  - The single-object modules stay for playbooks that converge one object; this module and they go through
    the same planners.
seealso:
  - module: flexvdi.storage.storage_info
"""

EXAMPLES = r"""
- name: Converge this host's storage in one run (what the storage role does)
  flexvdi.storage.storage:
    image_storages:
      - name: MyImageStorage
        hosts: "{{ groups['vdi_hosts'] }}"
        volumes:
          - name: local
            mount_point: /home/images
"""

RETURN = r"""
objects:
  description:
    - Every object of the declaration this host converged, in order, each with its own result as its module
      returns it (C(changed), C(actions), C(diff) in diff mode, its details view under C(volume),
      C(image_storage), C(media_storage) or C(direct_storage)), plus C(kind), C(name), C(image_storage) for
      volumes, C(failed), and C(msg) when it failed.
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "external", "name": "local", "image_storage": "MyImageStorage", "changed": false, "actions": [], "failed": false}]
actions:
  description: The writes of the whole run (registry, fstab), after the objects' own steps.
  returned: always
  type: list
  elements: str
  sample: ["update /etc/fstab and tell systemd (daemon-reload)", "update /etc/flexvdi/storage.json"]
failed_objects:
  description: The objects that failed, by kind and name.
  returned: always
  type: list
  elements: str
  sample: []
results:
  description: With O(phase=identify), what this host sees at each OCFS2 device, one C(identity) each.
  returned: phase identify
  type: list
  elements: dict
  sample: []
"""

from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

_payload.compile_once()  # first: every file imported below is compiled once (see _payload)

from ansible_collections.flexvdi.storage.plugins.module_utils import _module, _onepass


def main():
    _module.run_object(_module.storage_spec, _onepass.converge)


if __name__ == "__main__":
    main()
