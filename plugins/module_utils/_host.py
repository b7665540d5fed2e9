# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one module run knows about this host, read once. Private to the collection."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import platform
import time

from . import _registry
from ._errors import StorageError
from ._fileio import atomic_write
from ._mounts import Fstab, read_mountinfo
from ._plan import Plan
from ._qemu import find as find_qemu

POLL_INTERVAL = 2


class Host:
    """Facts of this host for one module run: mounts, fstab, registry, qemu user.

    Each is read at most once (mountinfo again only after this run mounted something),
    in-process, so a run that changes nothing starts no process.
    """

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self._runner = None
        self.registry = _registry.Registry(self.params.get("registry") or _registry.DEFAULT_PATH)
        self.fstab_path = self.params.get("fstab") or "/etc/fstab"
        self.hostname = self.params.get("inventory_hostname") or platform.node().split(".")[0]
        self._mounts = None
        self._fstab = None
        self._qemu = False
        # Sources of network filesystems found not answering in this run: message by source.
        self.unresponsive = {}
        # One pass over many objects (flexvdi.storage.storage): see batch().
        self._batch = None
        # Which phase of flexvdi.storage.storage this run is: None for a single-object module (its
        # storage's first host creates, the others wait, each with its own timeout), "create" (the
        # first host creates and stops there) or "converge" (nobody creates or polls; see await_peer).
        self.stage = None
        # converge phase: seconds to wait for another host (the free strategy only; 0: fail at once)
        # and, by image storage, why its first host did not create in this run ("" when it did).
        self.wait_timeout = 0
        self.creators = {}
        # flexvdi.storage.storage: the declared image storages, by name (their hosts and root).
        self.declared = {}

    @property
    def runner(self):
        """The Runner of this run's commands, made when one is first run (a no-op run runs none)."""
        if self._runner is None:
            from ._runner import Runner

            self._runner = Runner(self.module)
        return self._runner

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

    @contextlib.contextmanager
    def object(self, params):
        """Converge one object of a declaration: the planners read ``params`` as their module's."""
        saved = self.params
        self.params = params
        try:
            yield self
        finally:
            self.params = saved

    def await_peer(self, plan, storage_name, designated, words, timeout, poll):
        """A step that needs what another host creates (a format, a Gluster volume).

        A single-object module waits up to ``timeout`` seconds, polling ``poll()`` (None when ready,
        else the state seen, in words; it raises StorageError when it never will be). In the converge phase of
        flexvdi.storage.storage nothing polls: the create phase ran before on ``designated``, so
        check mode describes the step when that phase planned it, and a run fails at once, saying
        why, unless the free strategy asked for a bounded wait (``wait_timeout``).
        """
        why = self.creators.get(storage_name, "")
        if self.stage == "converge":
            if self.check_mode and not why:
                plan.wait(f"{designated} is to {words} first (its create phase, in this run)", lambda: None)
                return
            timeout = self.wait_timeout
            if not timeout:
                raise StorageError(
                    f"{designated}, the first host of image storage {storage_name}, is to {words} in the create "
                    f"phase, and that is not done: {why or 'it failed there, or ran in another batch (serial)'}. "
                    f"Nothing was changed on {self.hostname}: run with {designated} in the play (not left out by "
                    "--limit, serial or a job slice)"
                )

        def do():
            deadline = time.monotonic() + timeout
            while True:
                state = poll()
                if state is None:
                    return
                if time.monotonic() >= deadline:
                    raise StorageError(
                        f"waited {timeout} s for {designated}, the first host of the image storage {storage_name}, to "
                        f"{words}; {state}. Look at {designated}'s result for this volume (it failed, or it is not in this run: "
                        "--limit, serial, a job slice), then run again"
                    )
                time.sleep(POLL_INTERVAL)

        plan.wait(f"wait up to {timeout} s for {designated} to {words}", do)

    def registry_data(self):
        """The registry as this run has it: in one pass, with the objects converged so far."""
        if self._batch is not None:
            return copy.deepcopy(self._batch.after)
        return self.registry.load()

    @contextlib.contextmanager
    def batch(self):
        """One pass: every object's transaction under one registry lock; one fstab and registry write.

        Each object's own steps (mkdir, format, mount, chown...) are applied by its transaction, so a
        failure undoes that object's steps only; its registry and fstab edits are dropped with it.
        The fstab and the registry are written once, by ``commit()``, from the state of every object
        that converged; if that write fails, every object's steps are undone.
        """
        with self.registry.lock():
            before = self.registry.load()
            self._batch = _Batch(before, self.registry.text, self.fstab.original)
            try:
                yield self._batch
            finally:
                self._batch = None

    def checkpoint(self):
        """Where the pass is now, for ``rollback``."""
        batch = self._batch
        return copy.deepcopy(batch.after), self.fstab.render(), len(batch.applied)

    def steps_since(self, point):
        """The steps applied (not in check mode) by the objects converged since ``point``, in order."""
        if self.check_mode:
            return []
        return [a.description for plan in self._batch.applied[point[2] :] for a in plan.actions]

    def rollback(self, point):
        """Undo, newest first, the steps of what converged since ``point``; returns what could not be undone."""
        after, fstab_text, count = point
        batch = self._batch
        left = []
        if not self.check_mode:
            for plan in reversed(batch.applied[count:]):
                left += Plan.undo_all(plan)
        del batch.applied[count:]
        batch.after = after
        self._restore_fstab(fstab_text)
        self.forget_mounts()
        return left

    def commit(self):
        """Write the fstab and the registry of a pass (or describe them in check mode): the pass's result."""
        batch = self._batch
        plan = self.new_plan()
        self._fstab = Fstab.parse(self.fstab.render(), self.fstab_path)
        self._fstab.original = batch.fstab_text
        self.plan_fstab(plan, batch=False)
        self.plan_registry(plan, batch.before, batch.after)
        try:
            actions = plan.apply(self.check_mode)
        except StorageError as exc:
            left = list(exc.left)
            for done in reversed(batch.applied):
                left += Plan.undo_all(done)
            raise StorageError(exc.msg + "; every object's steps were undone", left=left) from exc
        return {"changed": plan.changed, "actions": actions, "diffs": plan.diffs}

    def transaction(self, edit):
        """The one way a module changes this host.

        Under the registry lock, ``edit(before, after, plan)`` records the new registry in
        ``after`` (a copy of ``before``) and its steps in ``plan``; the fstab and registry
        writes then join the plan, which is applied (or only described in check mode).
        Returns the module result and ``after``. In one pass (``batch()``) the writes wait for
        ``commit()``; the result still says what this object changes in them.
        """
        if self._batch is not None:
            return self._batch_transaction(edit)
        with self.registry.lock():
            before = self.registry.load()
            after = copy.deepcopy(before)
            plan = self.new_plan()
            edit(before, after, plan)
            self.plan_fstab(plan)
            self.plan_registry(plan, before, after)
            return self.finish(plan), after

    def _batch_transaction(self, edit):
        batch = self._batch
        before = copy.deepcopy(batch.after)
        after = copy.deepcopy(batch.after)
        fstab_before = self.fstab.render()
        plan = self.new_plan()
        plan.share_dirs(batch.planned_dirs)
        try:
            edit(before, after, plan)
            result = self.finish(plan)
        except StorageError:
            self._restore_fstab(fstab_before)
            raise
        batch.applied.append(plan)
        batch.after = after
        fstab_after = self.fstab.render()
        diffs = _record_diffs(before, after)
        if fstab_after != fstab_before:
            result["actions"].append(f"update {self.fstab_path}")
            diffs.append(
                {
                    "before_header": self.fstab_path,
                    "after_header": self.fstab_path,
                    "before": fstab_before,
                    "after": fstab_after,
                }
            )
        if before != after:
            result["actions"].append(f"update {self.registry.path}")
        result["changed"] = bool(result["actions"])
        if self.module._diff:
            result["diff"] = diffs
        return result, after

    def _restore_fstab(self, text):
        original = self.fstab.original
        self._fstab = Fstab.parse(text, self.fstab_path)
        self._fstab.original = original

    def plan_fstab(self, plan, batch=None):
        """Add the fstab rewrite to ``plan`` if this run's edits changed it (in one pass: at commit)."""
        if self._batch is not None and batch is None:
            return
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


class _Batch:
    def __init__(self, before, registry_text, fstab_text):
        self.before = before
        self.after = copy.deepcopy(before)
        self.registry_text = registry_text
        self.fstab_text = fstab_text
        self.applied = []
        self.planned_dirs = set()


def _record_diffs(before, after):
    """What one object changed in the registry, record by record (the file is written once, at the end)."""
    diffs = []
    for kind in sorted(set(before) | set(after)):
        old, new = before.get(kind), after.get(kind)
        if not isinstance(old, dict) or not isinstance(new, dict):
            continue
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                header = f"registry: {kind}/{name}"
                diffs.append(
                    {
                        "before_header": header,
                        "after_header": header,
                        "before": _json(old.get(name)),
                        "after": _json(new.get(name)),
                    }
                )
    return diffs


def _json(record):
    return "" if record is None else json.dumps(record, indent=2, sort_keys=True) + "\n"


def _parent(path):
    return os.path.dirname(os.path.abspath(path))
