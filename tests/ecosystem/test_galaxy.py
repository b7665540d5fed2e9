"""The built artifact as Galaxy and Automation Hub take it: contents, galaxy-importer, docs lint, changelog."""

from __future__ import annotations

import re
import tarfile

import pytest
import yaml
from conftest import REPO, run, tool

# What only works inside this repository, or would mislead an execution-environment build.
NEVER_SHIPPED = (
    "inventories/lab/",
    "tests/integration/",
    "tests/unit/",
    "tests/lab/",
    "tests/ecosystem/",
    "molecule/",
    "ee/",
    "collections/",
    "scripts/",
    ".cache/",  # the docsite's build output (make docs: .cache/docsite/html) among the caches
    "tests/headless_chromium.py",
    "requirements.txt",
    "requirements-test.txt",
    "Makefile",
)


@pytest.fixture(scope="module")
def members(tarball):
    with tarfile.open(tarball) as tar:
        return {m.name + ("/" if m.isdir() else "") for m in tar.getmembers()}


def test_tarball_ships_only_what_works_outside_this_repository(members):
    leaked = sorted(m for m in members if any(m == p or m.startswith(p) for p in NEVER_SHIPPED))
    assert not leaked, leaked
    for needed in (
        "LICENSE",
        "README.md",
        "meta/runtime.yml",
        "tests/config.yml",
        "inventories/local/hosts.yml",
        "docs/docsite/extra-docs.yml",  # the docsite's guides and links, as antsibull-docs and Galaxy read them
        "docs/docsite/links.yml",
    ):
        assert needed in members, needed
    roles = {m.split("/")[1] for m in members if m.startswith("roles/") and m.count("/") >= 2}
    assert roles and all(f"roles/{r}/README.md" in members for r in roles), roles


def test_execution_environment_files_ship_and_say_nothing_is_needed(members):
    ee = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert ee["version"] == 1
    for kind in ("python", "system"):
        path = ee["dependencies"][kind]
        assert isinstance(path, str) and not path.startswith("/"), "ansible-builder needs a relative file path"
        assert path in members, f"{path} is build-ignored: ansible-builder would not see it"
        lines = [ln for ln in (REPO / path).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        assert lines == [], f"{path}: the controller side needs nothing beyond ansible-core"


def test_license_matches_galaxy_yml_and_headers(galaxy):
    text = (REPO / "LICENSE").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text
    assert galaxy["license"] == ["GPL-3.0-or-later"] and "license_file" not in galaxy
    header = (REPO / "plugins" / "modules" / "image_storage.py").read_text()
    assert "GNU General Public License v3.0+" in header


def test_galaxy_yml_promises_only_what_exists(galaxy):
    modules = {p.stem for p in (REPO / "plugins" / "modules").glob("*.py")}
    text = galaxy["description"].lower() + " " + " ".join(galaxy["tags"])
    if "gluster" in text:
        assert "gluster_volume" in modules, "galaxy.yml mentions Gluster, but there is no gluster_volume module"
    if "direct" in text:
        assert "direct_storage" in modules, "galaxy.yml mentions direct storages, but there is no module for them"
    assert re.search(r"\bocfs2\b", text) and "ocfs2_volume" in modules


def test_galaxy_importer_accepts_the_tarball(tarball):
    """No error, and no warning at all: each warning it gives is one the collection can fix."""
    proc = run([tool("python"), "-m", "galaxy_importer.main", str(tarball)], cwd=tarball.parent)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "Importer processing completed successfully" in output, output[-4000:]
    problems = [
        ln for ln in output.splitlines() if re.match(r"\s*(ERROR|WARNING)\b", ln) and "Location 'file:" not in ln
    ]
    assert not problems, "\n".join(problems)


def test_antsibull_docs_lint_is_clean(tarball, tmp_path):
    # --force: from the repository the checkout itself is on collections_path, already "installed".
    proc = run(
        [tool("ansible-galaxy"), "collection", "install", "--force", "-p", str(tmp_path), str(tarball)], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = tmp_path / "ansible_collections" / "flexvdi" / "storage"
    assert (installed / "MANIFEST.json").is_file(), proc.stdout
    proc = run([tool("antsibull-docs"), "lint-collection-docs", "--plugin-docs", str(installed)], cwd=tmp_path)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_changelog_has_this_release_and_is_rendered(galaxy):
    proc = run([tool("antsibull-changelog"), "lint"], cwd=REPO)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
    changes = yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text())
    assert galaxy["version"] in changes["releases"], (
        f"no {galaxy['version']} release section: antsibull-changelog release"
    )
    rendered = (REPO / "CHANGELOG.rst").read_text()
    assert f"v{galaxy['version']}" in rendered
