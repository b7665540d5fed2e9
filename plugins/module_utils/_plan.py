# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan, then apply. Private to the collection.

A module probes the current state, adds the actions that lead to the desired state to
a Plan (each with the words that describe it and, where possible, its undo), and calls
apply(): in check mode that returns the words; otherwise it runs the actions in order
and, when one fails, undoes what this run did, newest first, and reports what it could
not undo. Check mode is the same code path, not a copy. The diff of every file the plan
rewrites (registry, fstab) is recorded once, from the same before/after texts that the
write actions use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from ._errors import StorageError


def _NOTHING_TO_UNDO():
    """The undo of a step that changed nothing."""


@dataclass
class Action:
    description: str
    do: Callable
    undo: Callable | None = None


@dataclass
class Plan:
    actions: list = field(default_factory=list)
    diffs: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    _planned_dirs: set = field(default_factory=set, repr=False)

    def add(self, description, do, undo=None):
        self.actions.append(Action(description, do, undo))

    def wait(self, description, do):
        """A step that changes nothing on this host (waiting for another host): nothing to undo."""
        self.actions.append(Action(description, do, _NOTHING_TO_UNDO))

    def write_file(self, path, before, after, write, restore, then=""):
        """Rewrite a file (registry, fstab) when its text changes; records the diff.

        ``then`` names what ``write`` does after writing (" and tell systemd ...").
        """
        if before == after:
            return
        self.diffs.append({"before_header": path, "after_header": path, "before": before, "after": after})
        self.add(f"update {path}{then}", write, restore)

    def share_dirs(self, planned):
        """Count the directories that other plans of the same pass create as existing (one set)."""
        self._planned_dirs = planned

    def mkdirs(self, path, mode=0o755):
        """Create ``path`` (``mode``) and any missing parents (0755); undo removes those it created.

        Directories an earlier step of this plan creates count as existing, so two steps that
        need the same parent (a credentials directory and the registry's, on a fresh host)
        create it once. The words are decided now; at apply time each directory is created only
        if it is still missing, and only the ones created are removed by the undo, so check
        mode and the real run never disagree.
        """
        missing = []
        probe = os.path.abspath(path)
        while not os.path.exists(probe) and probe not in self._planned_dirs:
            missing.append(probe)
            probe = os.path.dirname(probe)
        if not missing:
            return
        self._planned_dirs.update(missing)
        created = []

        leaf = missing[0]

        def do():
            for directory in reversed(missing):
                try:
                    # Only the directory asked for gets ``mode`` (a 0700 credentials directory
                    # must not make the registry's directory 0700 too).
                    os.mkdir(directory, mode if directory == leaf else 0o755)
                except FileExistsError:
                    if not os.path.isdir(directory):
                        raise
                    continue
                created.append(directory)

        def undo():
            for directory in reversed(created):
                if os.path.isdir(directory):
                    os.rmdir(directory)
            del created[:]

        self.add(f"create directory {path}", do, undo)

    @property
    def changed(self):
        return bool(self.actions)

    def descriptions(self):
        return [action.description for action in self.actions]

    def apply(self, check_mode):
        """Run the actions (not in check mode); on failure undo and raise StorageError."""
        if check_mode:
            return self.descriptions()
        done = []
        for action in self.actions:
            try:
                action.do()
            except (StorageError, OSError) as exc:
                cause = (
                    exc.msg
                    if isinstance(exc, StorageError)
                    else "{}: {}".format(getattr(exc, "filename", "") or "", exc.strerror or exc)
                )
                left = self._undo(done)
                msg = f"{action.description} failed: {cause}"
                undone = [a.description for a in reversed(done) if a.undo not in (None, _NOTHING_TO_UNDO)]
                if undone:
                    msg += "; undone: {}".format(", ".join(undone))
                if left:
                    msg += "; could NOT undo: {}".format("; ".join(left))
                raise StorageError(msg, left=left) from exc
            done.append(action)
        return self.descriptions()

    @classmethod
    def undo_all(cls, plan):
        """Undo every step of an applied plan, newest first; what could not be undone."""
        return cls._undo(plan.actions)

    @staticmethod
    def _undo(done):
        left = []
        for action in reversed(done):
            if action.undo is None:
                left.append(action.description + " (no undo)")
                continue
            try:
                action.undo()
            except (StorageError, OSError) as exc:
                left.append("{} ({})".format(action.description, getattr(exc, "msg", None) or exc))
        return left
