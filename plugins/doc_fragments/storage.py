# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options every module has: where the registry lives and which host this is.
    DOCUMENTATION = r"""
options:
  registry:
    description:
      - Path of this host's registry of storage objects, a JSON file written atomically under a lock.
      - It records the objects this host takes part in and their mount points, never a secret.
      - Set it for every module at once with C(module_defaults) and the C(group/flexvdi.storage.all) action group.
    type: path
    default: /etc/flexvdi/storage.json
  inventory_hostname:
    description:
      - The name of this host in the object's host lists.
      - Set automatically from C(inventory_hostname) by the collection's action plugin; set it only
        when calling the module by other means.
    type: str
  inventory_hosts:
    description:
      - The hosts of this run's inventory. Set automatically by the collection's action plugin for
        the modules whose objects span hosts (image and media storages); set it only when calling
        the module by other means.
      - A storage registered on this host is never shrunk to drop a host that is not in this list
        (a run that sees part of the inventory, such as an AWX job slice), unless C(force) is set.
    type: list
    elements: str
"""

    STATE = r"""
options:
  state:
    description:
      - V(present) creates, mounts and registers the object on this host.
      - V(absent) unmounts and unregisters it; it never deletes guest images or any data.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Lift the safety refusals, each of which names this option in its message (for example
        unmounting a volume that still holds guest images or files open by qemu).
      - Even with V(true) no data is ever deleted.
    type: bool
    default: false
"""

    MOUNTS = r"""
options:
  fstab:
    description:
      - The fstab file to keep the mount entries in. Comments, unknown lines and order are kept.
      - Change it only for tests; the system mounts at boot from V(/etc/fstab).
    type: path
    default: /etc/fstab
"""

    QEMU = r"""
options:
  qemu_user:
    description:
      - The hypervisor's user that must read and write the volumes.
      - When not set, the first existing of C(libvirt-qemu) and C(qemu). A user that does not
        exist is an error.
    type: str
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Check mode returns the planned RV(actions) from the same code path that applies them.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff shows the registry and fstab before and after.
  action_group:
    description: Use C(group/flexvdi.storage.all) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - flexvdi.storage.all
"""

    # A module that only reads; READ_ATTRIBUTES alone for one outside the action group (host_probe).
    READ_ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: It only reads, so check mode returns the same as a normal run.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
"""

    # With READ_ATTRIBUTES, a module that only reads and is in the action group (storage_info):
    # ansible-core merges the attributes of the fragments a module extends.
    ACTION_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/flexvdi.storage.all) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - flexvdi.storage.all
"""
