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


def _full(options, *extras):
    spec = dict(options)
    for extra in extras:
        spec.update(extra())
    return spec


# The argument spec of each object, the one rule for both its own module and flexvdi.storage.storage,
# which validates every object of a declaration against its type's spec before anything runs.
# A spec imports its type's code (for its defaults) only when called: flexvdi.storage.storage
# compiles no OCFS2, Gluster or direct storage code for a declaration that has none.
def image_storage_spec():
    spec = {
        "name": {"type": "str", "required": True},
        "hosts": {"type": "list", "elements": "str"},
        "root": {"type": "path"},
    }
    return _full(spec, registry_args, state_args, mount_args), {}


def external_volume_spec():
    spec = {
        "image_storage": {"type": "str", "required": True},
        "name": {"type": "str", "required": True},
        "mount_point": {"type": "path"},
        "src": {"type": "str"},
        "fstype": {"type": "str"},
        "opts": {"type": "str"},
        "require_mountpoint": {"type": "bool", "default": False},
        "owner_qemu": {"type": "bool", "default": False},
        "shared": {"type": "bool", "default": True},
    }
    return _full(spec, registry_args, state_args, mount_args, qemu_args), {
        "required_if": [("state", "present", ["mount_point"])]
    }


def ocfs2_volume_spec():
    from ._ocfs2 import DEFAULT_CLUSTER, DEFAULT_FORMAT_TIMEOUT, DEFAULT_OPTS

    spec = {
        "image_storage": {"type": "str", "required": True},
        "name": {"type": "str", "required": True},
        "device": {"type": "str"},
        "label": {"type": "str"},
        "slots": {"type": "int"},
        "cluster_name": {"type": "str", "default": DEFAULT_CLUSTER},
        "mount_point": {"type": "path"},
        "mount_opts": {"type": "str", "default": DEFAULT_OPTS},
        "grow_slots": {"type": "bool", "default": False},
        "format_timeout": {"type": "int", "default": DEFAULT_FORMAT_TIMEOUT},
        "identify": {"type": "bool", "default": False},
        "identified_by": {"type": "str"},
    }
    return _full(spec, registry_args, state_args, mount_args, qemu_args), {
        "required_if": [("state", "present", ["device"]), ("identify", True, ["device"])]
    }


def gluster_volume_spec():
    from ._gluster import DEFAULT_CREATE_TIMEOUT

    spec = {
        "image_storage": {"type": "str", "required": True},
        "name": {"type": "str", "required": True},
        "brick": {"type": "path"},
        "replica": {"type": "int"},
        "arbiter": {"type": "str"},
        "addresses": {"type": "dict"},
        "allow_public": {"type": "list", "elements": "str", "default": []},
        "transport": {"type": "str", "default": "tcp", "choices": ["tcp", "rdma", "tcp,rdma"]},
        "options": {"type": "dict", "default": {}},
        "virt_profile": {"type": "bool", "default": True},
        "mount_point": {"type": "path"},
        "create_timeout": {"type": "int", "default": DEFAULT_CREATE_TIMEOUT},
        "delete_volume": {"type": "bool", "default": False},
    }
    return _full(spec, registry_args, state_args, mount_args, qemu_args), {
        "required_if": [("state", "present", ["brick"])]
    }


def media_storage_spec():
    spec = {
        "name": {"type": "str", "required": True},
        "server": {"type": "str"},
        "share": {"type": "str"},
        "username": {"type": "str"},
        "password": {"type": "str", "no_log": True},
        "domain": {"type": "str"},
        "vers": {"type": "str", "default": "3.1.1"},
        "port": {"type": "int", "default": 445},
        "hosts": {"type": "list", "elements": "str"},
        "mount_point": {"type": "path"},
        "read_only": {"type": "bool", "default": False},
        "samba_config": {"type": "path", "default": "/etc/samba/smb.conf"},
        "list_all_files": {"type": "bool", "default": False},
    }
    return _full(spec, registry_args, state_args, mount_args, qemu_args), {
        "required_if": [("state", "present", ["server", "share", "username"])]
    }


def direct_storage_spec():
    from ._direct import RULES_DIR

    spec = {
        "name": {"type": "str", "required": True},
        "host": {"type": "str"},
        "device": {"type": "str"},
        "udev_rules_dir": {"type": "path", "default": RULES_DIR},
    }
    return _full(spec, registry_args, state_args, mount_args, qemu_args), {
        "required_if": [("state", "present", ["device"])]
    }


def storage_spec():
    """flexvdi.storage.storage: a declaration; each object is checked against its own module's spec above."""
    spec = {
        "image_storages": {"type": "list", "elements": "dict", "default": []},
        "media_storages": {"type": "list", "elements": "dict", "default": []},
        "direct_storages": {"type": "list", "elements": "dict", "default": []},
        "phase": {"type": "str", "default": "converge", "choices": ["identify", "create", "converge"]},
        "wait_timeout": {"type": "int", "default": 0},
        "creators": {"type": "dict"},
        "refused": {"type": "dict"},
        "identified_by": {"type": "str"},
        "created_by": {"type": "str"},
        "media_passwords": {"type": "dict", "no_log": True},
    }
    return _full(spec, registry_args, mount_args, qemu_args), {}


def run_object(spec_of, converge):
    """main() of a single-object module: its spec from the table above, then run()."""
    spec, extra = spec_of()
    run(spec, converge, **extra)


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
