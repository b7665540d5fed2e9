"""Execution environments: what ansible-builder reads of the collection, and the custom EE definition."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from conftest import REPO, run, tool
from packaging.specifiers import SpecifierSet

EE_DIR = REPO / "ee"


def _introspect(folder) -> dict:
    proc = run([tool("ansible-builder"), "introspect", "--sanitize", str(folder)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = yaml.safe_load(proc.stdout.split("---", 1)[1])
    return {kind: data.get(kind) or [] for kind in ("python", "system")}


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory):
    """The galaxy stage of an EE build: the tarball installed into a collections path."""
    path = tmp_path_factory.mktemp("ee-collections")
    proc = run([tool("ansible-galaxy"), "collection", "install", "--force", "-p", str(path), str(tarball)], cwd=path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path


def test_builder_stage_finds_no_dependency_in_the_artifact(installed):
    assert _introspect(installed) == {"python": [], "system": []}


def test_builder_never_reads_the_development_pins_of_a_checkout():
    """A git checkout on a collections path (.cache/collections links this one): without
    meta/execution-environment.yml, builder would read requirements.txt (pip, cryptography pins...)."""
    assert (REPO / "requirements.txt").read_text().count("==") > 3  # the hazard is real
    assert _introspect(REPO / ".cache" / "collections") == {"python": [], "system": []}


def test_custom_ee_core_satisfies_requires_ansible():
    ee = yaml.safe_load((EE_DIR / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    core_req = ee["dependencies"]["ansible_core"]["package_pip"]
    ee_spec = SpecifierSet(core_req.removeprefix("ansible-core"))
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    floor = SpecifierSet(runtime["requires_ansible"])
    newest = re.search(r"^ansible-core==(\S+)", (REPO / "requirements.txt").read_text(), re.M).group(1)
    assert newest in ee_spec and newest in floor, (core_req, runtime["requires_ansible"], newest)


def test_builder_create_makes_a_context_that_installs_the_collection(tarball, galaxy, tmp_path):
    work = tmp_path / "ee"
    shutil.copytree(EE_DIR, work, ignore=shutil.ignore_patterns("context"))
    ee = yaml.safe_load((work / "execution-environment.yml").read_text())
    [source] = ee["additional_build_files"]
    assert source["src"] == tarball.name, (
        f"ee/execution-environment.yml names {source['src']}, the build makes {tarball.name}"
    )
    shutil.copy(tarball, work / tarball.name)

    context = tmp_path / "context"
    proc = run(
        [tool("ansible-builder"), "create", "-f", "execution-environment.yml", "--context", str(context),
         "--output-filename", "Containerfile"],
        cwd=work,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Containerfile").read_text()
    assert (context / "_build" / "collections" / tarball.name).is_file()
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements["collections"] == [{"name": f"/build/collections/{tarball.name}", "type": "file"}]
    assert re.search(r"ansible-galaxy collection install .*-r requirements\.yml", containerfile), containerfile
    assert "COPY _build/collections/ /build/collections/" in containerfile or "COPY _build" in containerfile
    assert re.search(r"ansible-core>=2\.21", containerfile), containerfile
