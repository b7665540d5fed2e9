"""The ecosystem tiers: the collection as Galaxy, ansible-builder and AWX see it.

The tools live in their own venv (.venv/tools, FLEXVDI_TOOLS, made by `make setup`); pytest of
the newest track drives them as programs. `tarball` is the artifact `ansible-galaxy collection
build` makes of this checkout: what Galaxy imports and what an execution environment installs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("FLEXVDI_TOOLS") or REPO / ".venv" / "tools")


def tool(name: str) -> str:
    path = TOOLS / "bin" / name
    if not path.exists():
        raise pytest.UsageError(f"{path} is missing: run `make setup`")
    return str(path)


def tools_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PATH=f"{TOOLS / 'bin'}:{env.get('PATH', '')}", LC_ALL="C.UTF-8", ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)  # the repository's ansible.cfg is a developer's, not a user's
    env.update(extra)
    return env


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("env", tools_env())
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, **kwargs)


@pytest.fixture(scope="session")
def galaxy() -> dict:
    return yaml.safe_load((REPO / "galaxy.yml").read_text())


@pytest.fixture(scope="session")
def tarball(tmp_path_factory: pytest.TempPathFactory, galaxy: dict) -> Path:
    out = tmp_path_factory.mktemp("build")
    proc = run([tool("ansible-galaxy"), "collection", "build", "--output-path", str(out), str(REPO)], cwd=out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = out / f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    assert path.is_file(), proc.stdout
    return path
