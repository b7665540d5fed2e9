# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleActionFail

from ansible_collections.flexvdi.storage.plugins.plugin_utils._action import StorageAction
from ansible_collections.flexvdi.storage.plugins.plugin_utils._identity import compare, find_report


class ActionModule(StorageAction):
    """Runs flexvdi.storage.ocfs2_volume after comparing, on the controller, what every host sees.

    With ``identified_by``, the registered ``identify: true`` results of every host of the
    storage that is in this run are compared first (see plugin_utils/_identity.py): a host
    that sees another disk, or none, fails the task on every host before any host formats or
    mounts; hosts outside the run are named in a warning.
    """

    def _cross_host_checks(self, args, task_vars):
        var = args.get("identified_by")
        if args.get("identify") or args.get("state", "present") != "present" or not var:
            return []
        storage, name, me = args.get("image_storage"), args.get("name"), args["inventory_hostname"]
        what = f"OCFS2 volume {name} of image storage {storage}"
        hostvars = task_vars.get("hostvars", {})
        own = find_report(_host_var(hostvars, me, var), storage, name)
        if own is None:
            raise AnsibleActionFail(
                f"{what}: identified_by names the variable {var}, which holds no identify result of this volume "
                f"for {me}: register an identify: true run of this module for this volume under that name, in an "
                "earlier task that runs on every host of the storage"
            )
        hosts = own.get("hosts")
        if not hosts:
            return []  # the image storage is not registered on this host: the module says so
        in_run = list(task_vars.get("ansible_play_hosts_all") or [me])
        active = list(task_vars.get("ansible_play_hosts") or in_run)
        reports = {h: find_report(_host_var(hostvars, h, var), storage, name) for h in hosts if h in active}
        verdict = compare(what, args.get("device"), hosts, in_run, active, reports, label=own.get("label"))
        if verdict.problem:
            raise AnsibleActionFail(verdict.problem)
        return verdict.warnings


def _host_var(hostvars, host, var):
    try:
        return hostvars[host].get(var)
    except (KeyError, AttributeError, TypeError):
        return None
