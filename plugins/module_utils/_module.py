# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by the modules and the one main() they all run. Private."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ._errors import StorageError
from ._host import Host
from ._qemu import find as find_qemu
from ._registry import DEFAULT_PATH


def registry_args():
    return {
        "registry": {"type": "path", "default": DEFAULT_PATH},
        "inventory_hostname": {"type": "str"},
        "inventory_hosts": {"type": "list", "elements": "str"},
    }


def state_args():
    return {
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "force": {"type": "bool", "default": False},
    }


def mount_args():
    return {"fstab": {"type": "path", "default": "/etc/fstab"}}


def qemu_args():
    return {"qemu_user": {"type": "str"}}


def run(argument_spec, converge, **kwargs):
    """Build the module, run ``converge(host)`` and turn a StorageError into fail_json."""
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **kwargs)
    try:
        if module.params.get("qemu_user"):
            # A qemu_user that does not exist is an error before anything is read or written.
            find_qemu(module.params["qemu_user"], required=True)
        result = converge(Host(module))
    except StorageError as exc:
        failure = {"msg": exc.msg, "changed": bool(exc.left)}
        if exc.left:
            failure["left"] = exc.left
        module.fail_json(**failure)
    module.exit_json(**result)
