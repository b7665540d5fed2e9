# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of every flexvdi.storage module. Private to the collection.

Injects the inventory hostname, so a module knows whether this host is in an object's
``hosts``, and validates what crosses hosts before anything runs on any of them: every
host named exists in the inventory, none is named twice.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class StorageAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    # Modules whose objects span hosts (image and media storages) set this: their host set is
    # the declaration's, so it may be left out only where the inventory has a single host.
    TAKES_HOSTS = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if not args.get("inventory_hostname"):
            args["inventory_hostname"] = task_vars.get("inventory_hostname")
        if self.TAKES_HOSTS and args.get("inventory_hosts") is None:
            args["inventory_hosts"] = list(task_vars.get("groups", {}).get("all", []))
        self._validate_hosts(args, task_vars)
        warnings = self._cross_host_checks(args, task_vars)
        result.update(
            self._execute_module(module_name=self._task.resolved_action, module_args=args, task_vars=task_vars)
        )
        if warnings:
            result["warnings"] = list(warnings) + list(result.get("warnings") or [])
        return result

    def _cross_host_checks(self, args, task_vars):
        """What a module checks across hosts before it runs on this one: raise AnsibleActionFail, or warnings."""
        return []

    def _validate_hosts(self, args, task_vars):
        what = "{} {}".format(self._task.resolved_action.rsplit(".", 1)[-1].replace("_", " "), args.get("name", ""))
        problem = hosts_problem(what, args, task_vars, self.TAKES_HOSTS)
        if problem:
            raise AnsibleActionFail(problem)


def hosts_problem(what, args, task_vars, takes_hosts):
    """Why the host list of an object cannot be converged in this run, or None (see StorageAction.run)."""
    hosts = args.get("hosts")
    if takes_hosts and args.get("state", "present") == "present":
        sliced = awx_job_slice(task_vars)
        if sliced:
            return (
                f"{what}: this run looks like one slice of an AWX job template with Job Slicing above 1 "
                f"({sliced}). A slice sees part of the inventory, so a storage's hosts taken from groups[...] "
                "would be the slice's: set the job template's Job Slicing to 1 (a storage is converged by one "
                "job that sees all of its hosts). A workflow named as its job template looks the same: rename "
                "one of them, or set flexvdi_storage_not_sliced: true. Nothing was changed"
            )
    if hosts is None:
        inventory = task_vars.get("groups", {}).get("all", [])
        if takes_hosts and args.get("state", "present") == "present" and len(inventory) > 1:
            return (
                f"{what}: hosts is not set and the inventory has {len(inventory)} hosts: list every host "
                "of the storage in hosts (a storage's host set is its declaration; a default taken from "
                "the hosts a run sees would shrink under --limit and let a shared disk be mounted twice)"
            )
        return None
    if isinstance(hosts, str) or not isinstance(hosts, (list, tuple)):
        return f"{what}: hosts must be a list of inventory hostnames"
    known = set(task_vars.get("groups", {}).get("all", [])) | set(task_vars.get("hostvars", {}).keys())
    unknown = [h for h in hosts if h not in known]
    if unknown:
        # A storage is never converged against part of its host set: under AWX job slicing
        # each slice's inventory holds only its share of the hosts, so hosts written out (or
        # taken from an inventory variable, which every slice sees whole) name hosts the slice
        # does not have, and every host of the slice stops here, before its module runs.
        return (
            "{}: hosts lists {}, not in the inventory: fix hosts or add them to the inventory. A job "
            "template with Job Slicing above 1 gives each slice part of the inventory: set its Job Slicing "
            "to 1 (a storage is converged by one job that sees all of its hosts); nothing was changed".format(
                what, ", ".join(map(str, unknown))
            )
        )
    twice = sorted({h for h in hosts if list(hosts).count(h) > 1})
    if twice:
        return "{}: hosts lists {} more than once: fix hosts".format(what, ", ".join(twice))
    return None


def awx_job_slice(task_vars):
    """Why this run looks like a slice of a sliced AWX job, or "" when it does not.

    AWX runs a job template with Job Slicing above 1 as a workflow job made from that template
    (same name, ``is_sliced_job``), one job per slice, each launched by it: the slice's extra vars
    say ``awx_job_launch_type: workflow`` with ``awx_workflow_job_name`` equal to
    ``awx_job_template_name`` (awx/main/models/jobs.py ``create_unified_job``,
    unified_jobs.py ``awx_meta_vars``). No variable names the slice itself.
    """
    if task_vars.get("flexvdi_storage_not_sliced"):
        return ""
    for prefix in ("awx", "tower"):
        template = task_vars.get(f"{prefix}_job_template_name")
        workflow = task_vars.get(f"{prefix}_workflow_job_name")
        if task_vars.get(f"{prefix}_job_launch_type") == "workflow" and template and workflow == template:
            return f"launched by workflow job {task_vars.get(f'{prefix}_workflow_job_id')!s} named {workflow!r}, as its job template"
    return ""
