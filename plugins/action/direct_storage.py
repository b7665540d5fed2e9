# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleActionFail

from ansible_collections.flexvdi.storage.plugins.plugin_utils._action import StorageAction


class ActionModule(StorageAction):
    """Runs flexvdi.storage.direct_storage with the inventory hostname; its host must be in the inventory."""

    def _cross_host_checks(self, args, task_vars):
        owner = args.get("host")
        if owner is None:
            return []
        known = set(task_vars.get("groups", {}).get("all", [])) | set(task_vars.get("hostvars", {}).keys())
        if owner not in known:
            raise AnsibleActionFail(
                f"direct storage {args.get('name', '')}: host {owner} is not in the inventory: set host to the "
                "inventory hostname of the host whose disk it is"
            )
        return []
