# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one module run knows about this host, read once. Private to the collection."""

from __future__ import annotations

import copy
import os
import platform

from . import _registry
from ._errors import StorageError
from ._fileio import atomic_write
from ._mounts import Fstab, read_mountinfo
from ._plan import Plan
from ._qemu import find as find_qemu
from ._runner import Runner


class Host:
    """Facts of this host for one module run: mounts, fstab, registry, qemu user.

    Each is read at most once (mountinfo again only after this run mounted something),
    in-process, so a run that changes nothing starts no process.
    """

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.runner = Runner(module)
        self.registry = _registry.Registry(self.params.get("registry") or _registry.DEFAULT_PATH)
        self.fstab_path = self.params.get("fstab") or "/etc/fstab"
        self.hostname = self.params.get("inventory_hostname") or platform.node().split(".")[0]
        self._mounts = None
        self._fstab = None
        self._qemu = False
        # Sources of network filesystems found not answering in this run: message by source.
        self.unresponsive = {}

    @property
    def mounts(self):
        if self._mounts is None:
            self._mounts = read_mountinfo()
        return self._mounts

    def forget_mounts(self):
        self._mounts = None

    @property
    def fstab(self):
        if self._fstab is None:
            self._fstab = Fstab.load(self.fstab_path)
        return self._fstab

    def qemu_user(self, required=False):
        if self._qemu is False or (required and self._qemu is None):
            self._qemu = find_qemu(self.params.get("qemu_user"), required=required)
        return self._qemu

    def hosts(self, what):
        """The O(hosts) option: this host alone when unset; a host listed twice is an error."""
        hosts = self.params["hosts"]
        hosts = list(hosts) if hosts is not None else [self.hostname]
        if len(set(hosts)) != len(hosts):
            raise StorageError("%s: hosts lists a host twice: fix hosts" % what)
        return hosts

    def check_host_set(self, what, existing):
        """The declared host set may replace the registered one: it never drops, unasked, a host
        that this run's inventory does not have.

        A run that sees part of the inventory (an AWX job slice, an inventory file that lost
        hosts) takes a host list built from ``groups[...]`` as the whole storage; registered with
        more hosts, the storage would shrink to the slice. The action plugin passes the run's
        inventory (O(inventory_hosts)); a host dropped from a storage must be in it, or
        O(force) says the host is gone for good.
        """
        self.check_default_hosts(what, existing)
        declared = self.params["hosts"]
        inventory = self.params.get("inventory_hosts")
        if declared is None or existing is None or inventory is None or self.params.get("force"):
            return
        registered = existing.get("hosts") or []
        dropped = [h for h in registered if h not in declared and h not in inventory]
        if dropped:
            raise StorageError(
                "%s is registered on this host with hosts %s; this run declares %s and its inventory does not "
                "have %s, so the storage would lose them. A run that sees part of the inventory (an AWX job "
                "template with Job Slicing above 1, an inventory that lost hosts) never shrinks a storage: run "
                "with the whole inventory (Job Slicing 1); to take %s out of the storage for good, run with "
                "them in the inventory, or set force: true. Nothing was changed"
                % (
                    what,
                    ", ".join(registered),
                    ", ".join(declared) or "no host",
                    ", ".join(dropped),
                    ", ".join(dropped),
                )
            )

    def check_default_hosts(self, what, existing):
        """An object registered with other hosts never shrinks to this one by omitting O(hosts).

        A host set is the declaration's: omitting it means "this host alone" only for an object
        that is new here or already alone here, so no run (under --limit, say) rewrites it.
        """
        if self.params["hosts"] is not None or existing is None:
            return
        registered = existing.get("hosts") or []
        if registered and registered != [self.hostname]:
            raise StorageError(
                "%s is registered on this host with hosts %s; hosts is not set, which would make it "
                "this host's alone: set hosts to the storage's full host list" % (what, ", ".join(registered))
            )

    def transaction(self, edit):
        """The one way a module changes this host.

        Under the registry lock, ``edit(before, after, plan)`` records the new registry in
        ``after`` (a copy of ``before``) and its steps in ``plan``; the fstab and registry
        writes then join the plan, which is applied (or only described in check mode).
        Returns the module result and ``after``.
        """
        with self.registry.lock():
            before = self.registry.load()
            after = copy.deepcopy(before)
            plan = self.new_plan()
            edit(before, after, plan)
            self.plan_fstab(plan)
            self.plan_registry(plan, before, after)
            return self.finish(plan), after

    def plan_fstab(self, plan):
        """Add the fstab rewrite to ``plan`` if this run's edits changed it."""
        if self._fstab is None or not self._fstab.changed:
            return
        fstab, original = self._fstab, self._fstab.original
        reload = self.systemd_reload_needed()

        def write():
            fstab.write()
            if reload:
                self.runner.run(["systemctl", "daemon-reload"], "fstab changed: systemctl daemon-reload")

        def restore():
            atomic_write(fstab.path, original, mode=0o644)
            if reload:
                self.runner.run(["systemctl", "daemon-reload"], "fstab restored: systemctl daemon-reload")

        then = " and tell systemd (daemon-reload)" if reload else ""
        plan.write_file(fstab.path, original, fstab.render(), write, restore, then)
        # Later edits in the same run start from the planned text.
        self._fstab = Fstab.parse(fstab.render(), fstab.path)

    def systemd_reload_needed(self):
        """systemd builds mount units from /etc/fstab: it must reread it after a change."""
        return os.path.realpath(self.fstab_path) == "/etc/fstab" and os.path.isdir("/run/systemd/system")

    def plan_registry(self, plan, before, after):
        if before == after:
            return
        registry, text = self.registry, self.registry.text
        state = copy.deepcopy(after)
        plan.mkdirs(_parent(registry.path))
        plan.write_file(
            registry.path,
            text,
            _registry.render(state),
            lambda: registry.save(state),
            lambda: registry.restore(text),
        )

    def finish(self, plan, **result):
        """Apply ``plan`` (or only describe it in check mode) and build the result."""
        actions = plan.apply(self.check_mode)
        result.update(changed=plan.changed, actions=actions)
        if self.module._diff:
            result["diff"] = plan.diffs
        for warning in plan.warnings:
            self.module.warn(warning)
        return result

    def new_plan(self):
        return Plan()


def _parent(path):
    return os.path.dirname(os.path.abspath(path))
