# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import contextlib

from ansible.errors import AnsibleActionFail
from ansible.plugins.loader import filter_loader

from ansible_collections.flexvdi.storage.plugins.plugin_utils._action import StorageAction, hosts_problem
from ansible_collections.flexvdi.storage.plugins.plugin_utils._defaults import object_module_defaults
from ansible_collections.flexvdi.storage.plugins.plugin_utils._identity import compare, find_report
from ansible_collections.flexvdi.storage.plugins.plugin_utils._role import gluster_pool

PHASED = ("ocfs2", "gluster")
# The single-object modules whose module_defaults (registry, fstab, qemu_user) this module honours.
OBJECT_MODULES = (
    "image_storage",
    "external_volume",
    "ocfs2_volume",
    "gluster_volume",
    "media_storage",
    "direct_storage",
)
SHARED = ("registry", "fstab", "qemu_user")

# The role's task arguments use a filter (default). A process that templates its first filter loads
# every ansible.builtin filter plugin first (0.05 to 0.2 s), and ansible-core forks a new worker for
# each task and host: without this, each of them paid that load again. The controller imports this
# plugin before it forks the first worker of the task (to read BYPASS_HOST_LOOP), so loading them here,
# once, leaves them loaded in every worker forked after it.
# Best effort: a unit test imports this without a collection loader (2.16, 2.18), with nothing to save.
with contextlib.suppress(KeyError, ValueError, ImportError):
    filter_loader.get("ansible.builtin.default")


class ActionModule(StorageAction):
    """Runs flexvdi.storage.storage: the host checks of every object at once, and the phases' controller side.

    - Every present image and media storage's hosts are checked (in the inventory, listed once, no AWX
      slice); all problems are reported together, before any host runs anything.
    - Passwords of media storages move to a no_log option.
    - registry, fstab and qemu_user: the task's, else module_defaults for this module, else the ones the
      play sets for the single-object modules (which must agree), so a play's module_defaults keep working.
    - phase create runs only on a host that is the first of a storage with an OCFS2 or Gluster volume:
      elsewhere it is skipped here, without a module run.
    - phases create and converge: what every host of each OCFS2 volume's storage reported in the identify
      phase (identified_by) is compared; a volume whose hosts disagree is refused, alone. In the converge
      phase each storage's first host's create result (created_by) says whether it created in this run.
    """

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(StorageAction, self).run(tmp, task_vars)
        args = dict(self._task.args)
        me = args.get("inventory_hostname") or task_vars.get("inventory_hostname")
        args["inventory_hostname"] = me
        if args.get("inventory_hosts") is None:
            args["inventory_hosts"] = list(task_vars.get("groups", {}).get("all", []))
        phase = args.get("phase") or "converge"
        storages = [s for s in args.get("image_storages") or [] if isinstance(s, dict)]
        problems = self._host_problems(args, task_vars)
        if problems:
            raise AnsibleActionFail(
                "the declaration has {} error(s), so nothing was done on any host: {}".format(
                    len(problems), "; ".join(problems)
                )
            )
        if phase == "create" and not [s for s in storages if _phased(s) and (s.get("hosts") or [None])[0] == me]:
            result.update(
                skipped=True, changed=False, msg=f"{me} is the first host of no storage with an OCFS2 or Gluster volume"
            )
            return result
        if phase == "identify" and not [s for s, volume in _volumes(args, "ocfs2") if _ocfs2_here(s, volume, me)]:
            result.update(skipped=True, changed=False, msg=f"{me} is a host of no OCFS2 volume")
            return result
        self._move_passwords(args)
        self._shared_defaults(args, task_vars)
        warnings = []
        if phase != "identify":
            warnings += self._compare_identities(args, storages, me, task_vars)
            self._gluster_addresses(args, task_vars)
        if phase == "converge":
            args["creators"] = self._creators(args, storages, me, task_vars)
            if _strategy(self._task) == "free" and not args.get("wait_timeout"):
                args["wait_timeout"] = 300
        result.update(
            self._execute_module(module_name=self._task.resolved_action, module_args=args, task_vars=task_vars)
        )
        if warnings:
            result["warnings"] = warnings + list(result.get("warnings") or [])
        if result.get("failed_objects") and not result.get("failed"):
            result["failed"] = True
            result["msg"] = "{} object(s) failed: {}".format(
                len(result["failed_objects"]),
                "; ".join(o["msg"] for o in result.get("objects", []) if o.get("failed")),
            )
        return result

    def _host_problems(self, args, task_vars):
        problems = []
        for storage in args.get("image_storages") or []:
            if isinstance(storage, dict):
                problem = hosts_problem(f"image storage {storage.get('name')}", storage, task_vars, True)
                problems += [problem] if problem else []
        for media in args.get("media_storages") or []:
            if isinstance(media, dict):
                problem = hosts_problem(f"media storage {media.get('name')}", media, task_vars, True)
                problems += [problem] if problem else []
        inventory = list(task_vars.get("groups", {}).get("all", [])) or list(task_vars.get("hostvars", {}).keys())
        for storage, volume in _volumes(args, "gluster"):
            arbiter = volume.get("arbiter")
            if arbiter is not None and arbiter not in inventory:
                problems.append(
                    f"Gluster volume {volume.get('name')} of image storage {storage.get('name')}: arbiter {arbiter} "
                    "is not in the inventory: fix arbiter, or add the host to the inventory"
                )
        return problems

    @staticmethod
    def _move_passwords(args):
        passwords, cleaned = {}, []
        for media in args.get("media_storages") or []:
            if isinstance(media, dict) and media.get("password") is not None:
                passwords[media.get("name")] = media["password"]
                media = {k: v for k, v in media.items() if k != "password"}
            cleaned.append(media)
        if passwords:
            args["media_storages"] = cleaned
            args["media_passwords"] = dict(args.get("media_passwords") or {}, **passwords)

    def _shared_defaults(self, args, task_vars):
        """registry, fstab, qemu_user from the single-object modules' module_defaults, when this task has none."""
        # A task argument that templates to omit hides module_defaults from ansible-core: read them here.
        own = object_module_defaults(self, [self._task.resolved_action], SHARED)
        found = object_module_defaults(self, ["flexvdi.storage." + m for m in OBJECT_MODULES], SHARED)
        for option in SHARED:
            if args.get(option) is not None:
                continue
            if option in own:
                args[option] = next(iter(own[option].values()))
                continue
            values = {v for v in found.get(option, {}).values() if v is not None}
            if len(values) > 1:
                raise AnsibleActionFail(
                    f"module_defaults of this play give {option} different values for {', '.join(sorted(found[option]))}: "
                    f"flexvdi.storage.storage converges them all in one run, with one {option}: set it once "
                    "(group/flexvdi.storage.all)"
                )
            if values:
                args[option] = values.pop()

    @staticmethod
    def _gluster_addresses(args, task_vars):
        hostvars = task_vars.get("hostvars", {})
        inventory = list(task_vars.get("groups", {}).get("all", [])) or list(hostvars.keys())
        pool = None
        for _storage, volume in _volumes(args, "gluster"):
            if volume.get("addresses") is None:
                if pool is None:
                    try:
                        pool = gluster_pool(hostvars, inventory)
                    except ValueError as exc:
                        raise AnsibleActionFail(f"the declaration cannot be converged on any host: {exc}") from None
                volume["addresses"] = pool[0]
                if not volume.get("allow_public"):
                    volume["allow_public"] = pool[1]

    def _compare_identities(self, args, storages, me, task_vars):
        var = args.get("identified_by")
        warnings, refused = [], {}
        if not var:
            return warnings
        hostvars = task_vars.get("hostvars", {})
        in_run = list(task_vars.get("ansible_play_hosts_all") or [me])
        active = list(task_vars.get("ansible_play_hosts") or in_run)
        for storage, volume in _volumes(args, "ocfs2"):
            hosts = storage.get("hosts") or []
            if (
                me not in hosts
                or (volume.get("state") or "present") != "present"
                or storage.get("state", "present") != "present"
            ):
                continue
            name, sname = volume.get("name"), storage.get("name")
            what = f"OCFS2 volume {name} of image storage {sname}"
            reports = {h: find_report(_host_var(hostvars, h, var), sname, name) for h in hosts if h in active}
            label = volume.get("label") or f"{sname}.{name}"
            verdict = compare(what, volume.get("device"), hosts, in_run, active, reports, label=label)
            if verdict.problem:
                refused[f"{sname}/{name}"] = verdict.problem
            warnings += verdict.warnings
        args["refused"] = refused
        return warnings

    @staticmethod
    def _creators(args, storages, me, task_vars):
        """By storage whose first host is another: why that host did not create in this run ('' if it did)."""
        var = args.get("created_by")
        hostvars = task_vars.get("hostvars", {})
        in_run = list(task_vars.get("ansible_play_hosts_all") or [me])
        active = list(task_vars.get("ansible_play_hosts") or in_run)
        batch = list(task_vars.get("ansible_play_batch") or active)
        found = {}
        for storage in storages:
            hosts = storage.get("hosts") or []
            if not _phased(storage) or not hosts or me not in hosts:
                continue
            first, name = hosts[0], storage.get("name")
            created = _host_var(hostvars, first, var) if var else None
            if first not in in_run:
                found[name] = f"{first} is not in this run (--limit, or a job slice)"
            elif not isinstance(created, dict):
                if first not in active:
                    found[name] = f"{first} failed or was unreachable earlier in this run"
                elif first not in batch:
                    found[name] = f"{first} is in a later batch of this play (serial)"
                else:
                    found[name] = f"{first} did not run its create phase in this run"
            else:
                failed = [
                    o.get("msg", "")
                    for o in created.get("objects") or []
                    if o.get("failed") and o.get("image_storage") == name
                ]
                found[name] = f"its create phase failed: {'; '.join(failed)}" if failed else ""
                if created.get("failed") and not failed and not created.get("objects"):
                    found[name] = f"its create phase failed: {created.get('msg', '')}"
        return found


def _phased(storage):
    if (storage.get("state") or "present") != "present":
        return False
    return any(
        (v.get("type") or "external") in PHASED and (v.get("state") or "present") == "present"
        for v in storage.get("volumes") or []
        if isinstance(v, dict)
    )


def _ocfs2_here(storage, volume, me):
    """An OCFS2 volume that ``me`` converges to present: what the identify phase reports on."""
    return (
        (storage.get("state") or "present") == "present"
        and (volume.get("state") or "present") == "present"
        and me in (storage.get("hosts") or [])
    )


def _volumes(args, vtype):
    for storage in args.get("image_storages") or []:
        if not isinstance(storage, dict):
            continue
        for volume in storage.get("volumes") or []:
            if isinstance(volume, dict) and (volume.get("type") or "external") == vtype:
                yield storage, volume


def _strategy(task):
    try:
        return task.get_play().strategy
    except AttributeError:
        return None


def _host_var(hostvars, host, var):
    try:
        return hostvars[host].get(var)
    except (KeyError, AttributeError, TypeError):
        return None
