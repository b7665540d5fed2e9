# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleActionFail

from ansible_collections.flexvdi.storage.plugins.plugin_utils._action import StorageAction
from ansible_collections.flexvdi.storage.plugins.plugin_utils._role import gluster_pool


class ActionModule(StorageAction):
    """Runs flexvdi.storage.gluster_volume with every host's address in the trusted pool.

    The module learns the storage's hosts from this host's registry (the declaration, whatever
    this run's --limit or slice); their addresses come from the inventory, here: each host's
    ``gluster_cluster_address`` (an IP address), else its ``ansible_host``, else its inventory name, and
    those whose ``gluster_cluster_allow_public`` lets a public address through. The arbiter
    must be an inventory host. Which host creates the volume and how the others wait is the
    module's (the first host of the storage; see module_utils/_gluster.py).
    """

    def _cross_host_checks(self, args, task_vars):
        hostvars = task_vars.get("hostvars", {})
        inventory = list(task_vars.get("groups", {}).get("all", [])) or list(hostvars.keys())
        arbiter = args.get("arbiter")
        if arbiter is not None and arbiter not in inventory:
            raise AnsibleActionFail(
                f"Gluster volume {args.get('name')} of image storage {args.get('image_storage')}: arbiter {arbiter} "
                "is not in the inventory: fix arbiter, or add the host to the inventory"
            )
        if args.get("addresses") is None:
            try:
                args["addresses"], public = gluster_pool(hostvars, inventory)
            except ValueError as exc:
                raise AnsibleActionFail(f"Gluster volume {args.get('name')}: {exc}") from None
            if not args.get("allow_public"):
                args["allow_public"] = public
        return []
