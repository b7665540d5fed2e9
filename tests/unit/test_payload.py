"""_payload.compile_once(): each file of a zip payload compiled once per import, with the same result.

Each case runs in a fresh Python, as a module run does: a zip of sources on sys.path, as
AnsiballZ puts its payload, and zipimport's compile counted per file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile

import pytest

CHILD = textwrap.dedent(
    """
    import json, sys, zipimport
    sys.path.insert(0, sys.argv[1])
    counts = {}
    original = zipimport._compile_source

    def counting(pathname, source):
        name = pathname.rsplit("/", 1)[-1]
        counts[name] = counts.get(name, 0) + 1
        return original(pathname, source)

    zipimport._compile_source = counting
    if sys.argv[3] == "once":
        from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

        _payload.compile_once()
        wrapper = zipimport._compile_source
        _payload.compile_once()  # a second call wraps nothing more
        assert zipimport._compile_source is wrapper
    sys.path.insert(0, sys.argv[2])
    import pkg.a

    print(json.dumps({"counts": counts, "value": pkg.a.VALUE, "file": pkg.a.__file__}))
    """
)


def _run(tmp_path, mode):
    payload = tmp_path / "payload.zip"
    with zipfile.ZipFile(payload, "w") as z:
        z.writestr("pkg/__init__.py", "")
        z.writestr("pkg/a.py", "from . import b\n\nVALUE = b.VALUE + 1\n")
        z.writestr("pkg/b.py", "VALUE = 41\n")
    from conftest import COLLECTIONS_DIR

    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(COLLECTIONS_DIR), str(payload), mode],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_each_file_is_compiled_once_and_runs_the_same(tmp_path):
    plain = _run(tmp_path, "plain")
    once = _run(tmp_path, "once")
    if set(plain["counts"].values()) == {1}:
        pytest.skip(f"this Python's zipimport compiles each file once already: {plain['counts']}")
    assert plain["counts"] == {"__init__.py": 2, "a.py": 2, "b.py": 2}
    assert once["counts"] == {"__init__.py": 1, "a.py": 1, "b.py": 1}
    assert once["value"] == plain["value"] == 42
    assert once["file"] == plain["file"]
