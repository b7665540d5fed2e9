"""What a test compares before and after a module run: registry, fstab, mounts, directories."""

from __future__ import annotations

import json
import os


def mounts():
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        rows = [line.split(" ") for line in handle]
    return {row[4].replace("\\040", " "): row[row.index("-", 6) + 1] for row in rows}


def snapshot(paths):
    """Everything a module may touch, as one comparable value."""

    def read(path):
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    tree = []
    for top, dirs, files in os.walk(paths["root"]):
        for name in dirs + files:
            full = os.path.join(top, name)
            st = os.lstat(full)
            tree.append((full, st.st_mode, st.st_uid, st.st_gid))
    return {
        "registry": read(paths["registry"]),
        "registry_dir": os.path.isdir(os.path.dirname(paths["registry"])),
        "fstab": read(paths["fstab"]),
        "mounts": {k: v for k, v in mounts().items() if k.startswith(paths["root"])},
        "tree": sorted(tree),
    }


def registry(paths):
    with open(paths["registry"], encoding="utf-8") as handle:
        return json.load(handle)


def three_runs(run_module, name, args, paths):
    """Check mode changes nothing; the real run changes; the next run does not. Returns the real result."""
    before = snapshot(paths)
    checked = run_module(name, args, check=True, diff=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"], "check mode predicted no change"
    assert checked["actions"], "check mode must list the planned actions"
    assert snapshot(paths) == before, "check mode changed something"
    real = run_module(name, args, diff=True)
    assert not real.get("failed"), real.get("msg")
    assert real["changed"]
    assert real["actions"] == checked["actions"], "check mode must predict the real actions"
    again = run_module(name, args)
    assert not again.get("failed"), again.get("msg")
    assert not again["changed"], "second run changed: {}".format(again["actions"])
    assert again["actions"] == []
    return real


def fails_cleanly(run_module, name, args, paths, message):
    """The run fails with ``message``, changed false, and nothing on disk changed."""
    before = snapshot(paths)
    result = run_module(name, args)
    assert result.get("failed"), f"expected a failure, got {result}"
    assert message in result["msg"], result["msg"]
    assert not result.get("changed")
    assert snapshot(paths) == before, "a failed run left changes behind"
    return result
