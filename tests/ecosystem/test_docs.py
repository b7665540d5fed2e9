"""The docsite (`make docs`, scripts/docsite/build.py) as a user reads it, and as it fails.

The site is built once, warning-free, from this checkout; every module, filter, role entry point
and README guide has its page; the pages users open first render in headless Chromium with no
console message and real content; no link inside the site points to a page or anchor it does not
have. Each check is shown to fail on a control: a page with a console error, a copy of the site
with broken links, and a copy of the collection whose plugin documentation does not build.
"""

from __future__ import annotations

import html as html_module
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from conftest import REPO, run, tool
from headless_chromium import render

BUILD = REPO / "scripts" / "docsite" / "build.py"
FQCN = "flexvdi.storage"
# What the docs build reads of a collection (a copy of these is what the bad-input tests break).
COLLECTION_FILES = ("galaxy.yml", "README.md", "meta", "plugins", "roles", "docs", "changelogs")


def build(collection: Path, out: Path):
    return run([tool("python"), str(BUILD), "--collection", str(collection), "--out", str(out)])


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docsite")
    proc = build(REPO, out)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "WARNING" not in output and "ERROR" not in output, output[-6000:]
    return out / "html"


def _text(html: str) -> str:
    """A page's words, tags dropped and whitespace collapsed."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(html_module.unescape(text).replace("\u2019", "'").split())


def test_every_module_filter_role_entry_point_and_guide_has_a_page(site):
    modules = [p.stem for p in (REPO / "plugins" / "modules").glob("*.py")]
    filters = [p.stem for p in (REPO / "plugins" / "filter").glob("*.yml")]
    assert len(modules) >= 7 and len(filters) >= 6, (modules, filters)
    for name in modules:
        assert f"<h1>{FQCN}.{name} module" in (site / f"{name}_module.html").read_text(), name
    for name in filters:
        assert f"<h1>{FQCN}.{name} filter" in (site / f"{name}_filter.html").read_text(), name
    roles = sorted(p.parent.parent.name for p in (REPO / "roles").glob("*/meta/argument_specs.yml"))
    assert "storage" in roles, roles
    for role in roles:
        page = (site / f"{role}_role.html").read_text()
        specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
        for entry in specs["argument_specs"]:
            anchor = f"ansible-collections-flexvdi-storage-{role}-role-entrypoint-{entry}".replace("_", "-")
            assert f'id="{anchor}"' in page, (role, entry)
    index = (site / "index.html").read_text()
    guides = yaml.safe_load((REPO / "docs" / "docsite" / "extra-docs.yml").read_text())["sections"][0]["toctree"]
    assert {"getting_started", "declaring_a_cluster", "safety", "awx", "storage_report"} <= set(guides)
    for name in guides:
        assert (site / "docsite" / f"{name}.html").is_file(), name
        assert f'href="docsite/{name}.html"' in index, name


def test_the_doc_fragment_text_is_on_every_module_page(site):
    """antsibull-docs gives a doc fragment no page of its own: its options join the plugins' tables."""
    fragment = (REPO / "plugins" / "doc_fragments" / "storage.py").read_text()
    documentation = yaml.safe_load(re.search(r'DOCUMENTATION = r"""(.*?)"""', fragment, re.S).group(1))
    sentence = documentation["options"]["registry"]["description"][0]
    users = [m for m in (REPO / "plugins" / "modules").glob("*.py") if "flexvdi.storage.storage\n" in m.read_text()]
    assert len(users) >= 7, users
    for module in users:
        page = (site / f"{module.stem}_module.html").read_text()
        assert sentence in _text(page), f"{module.name}: the fragment's registry option is not on its page"


def test_the_guides_are_the_readme_sections(site):
    readme = (REPO / "README.md").read_text()
    sections = re.findall(r"<!-- docsite: (\w+) -->\n(.*?)<!-- end docsite: \1 -->", readme, re.S)
    assert len(sections) == 5, [name for name, _ in sections]
    for name, text in sections:
        first = next(p for p in text.split("\n\n") if p.strip() and not p.startswith("```"))
        words = " ".join(re.sub(r"[`*]", "", first).strip().lstrip("-0123456789. ").split()[:12])
        assert words in _text((site / "docsite" / f"{name}.html").read_text()), (name, words)
    safety = (site / "docsite" / "safety.html").read_text()
    # A code span naming an option that only one plugin has links to that option's documentation.
    assert (
        'href="../external_volume_module.html#ansible-collections-flexvdi-storage-external-volume-module-parameter-shared"'
        in safety
    )


@pytest.mark.parametrize(
    ("page", "content"),
    [
        ("index.html", ["Guides", "external_volume module", "storage role"]),
        ("external_volume_module.html", [f"{FQCN}.external_volume module", "ansible-option-table", "mount_point"]),
        ("ocfs2_volume_module.html", [f"{FQCN}.ocfs2_volume module", "ansible-option-table", "slots"]),
        ("storage_role.html", [f"{FQCN}.storage role", "ansible-option-table", "flexvdi_image_storages"]),
    ],
)
def test_page_renders_in_chromium_without_console_messages(site, tmp_path, page, content):
    rendered = render(site / page, tmp_path / "profile", dom=True)
    assert rendered.console == [], f"{page} logged to the console: {rendered.console}"
    for needed in content:
        assert needed in rendered.dom, f"{page}: {needed!r} is not in the rendered DOM"


def test_chromium_reports_a_console_error_of_a_control_page(site, tmp_path):
    """The same check on a copy of the index whose script logs an error: it must be seen."""
    control = site / "control-console.html"  # in the site, so that its scripts and styles load
    html = (site / "index.html").read_text()
    control.write_text(html.replace("</body>", '<script>console.error("control page error")</script></body>'))
    try:
        rendered = render(control, tmp_path / "profile", dom=True)
    finally:
        control.unlink()
    assert any("control page error" in line for line in rendered.console), rendered.console


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            elif (name == "href" and tag in ("a", "link", "area")) or (
                name == "src" and tag in ("script", "img", "iframe")
            ):
                self.urls.append(value)


def broken_links(root: Path) -> list[str]:
    """Every href/src of every page that points into the site at a file or anchor it lacks."""
    parsed: dict[Path, _Links] = {}

    def parse(path: Path) -> _Links:
        if path not in parsed:
            parser = _Links()
            parser.feed(path.read_text(errors="replace"))
            parsed[path] = parser
        return parsed[path]

    broken = []
    for page in sorted(root.rglob("*.html")):
        for url in parse(page).urls:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc:
                continue  # another site (https:, mailto:): not this site's to check
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(root)}: {url}"
            if not target.is_relative_to(root.resolve()) or not target.is_file():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parse(target).ids:
                broken.append(f"{where} (no such anchor)")
    return broken


def test_no_link_points_to_a_page_or_anchor_the_site_lacks(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 25, pages
    assert broken_links(site) == []


def test_the_link_check_finds_broken_links_in_a_control_copy(site, tmp_path):
    copy = tmp_path / "html"
    shutil.copytree(site, copy)
    page = copy / "external_volume_module.html"
    control = (
        '<a href="nonexistent_module.html">a page the site lacks</a>'
        '<a href="ocfs2_volume_module.html#parameter-nonexistent">an anchor it lacks</a>'
        '<img src="_static/nonexistent.png">'
        '<a href="../../outside.html">outside the site</a>'
    )
    page.write_text(page.read_text().replace("</body>", control + "</body>"))
    assert broken_links(copy) == [
        "external_volume_module.html: nonexistent_module.html (no such file)",
        "external_volume_module.html: ocfs2_volume_module.html#parameter-nonexistent (no such anchor)",
        "external_volume_module.html: _static/nonexistent.png (no such file)",
        "external_volume_module.html: ../../outside.html (no such file)",
    ]


def _broken_collection(tmp_path: Path, module: str, edit) -> Path:
    copy = tmp_path / "collection"
    copy.mkdir()
    for name in COLLECTION_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy / name)
    path = copy / "plugins" / "modules" / f"{module}.py"
    text = path.read_text()
    start = text.index('DOCUMENTATION = r"""')
    end = text.index('"""', start + 20)
    path.write_text(text[:start] + edit(text[start:end]) + text[end:])
    return copy


@pytest.mark.parametrize(
    ("module", "edit", "message"),
    [
        # YAML that does not parse: antsibull-docs fails on it (within seconds)
        ("external_volume", lambda doc: doc.replace("\noptions:\n", "\noptions: [unclosed\n", 1), "parse"),
        # an option reference to no option: the page's link has no target, a Sphinx warning
        (
            "ocfs2_volume",
            lambda doc: re.sub(r"\ndescription:\n  - ", "\ndescription:\n  - See O(nonexistent).\n  - ", doc, count=1),
            "nonexistent",
        ),
    ],
    ids=["bad-yaml", "unknown-option-reference"],
)
def test_plugin_docs_that_do_not_build_fail_the_build_naming_the_file(tmp_path, module, edit, message):
    collection = _broken_collection(tmp_path, module, edit)
    proc = build(collection, tmp_path / "out")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-4000:]
    named = [ln for ln in output.splitlines() if f"{collection}/plugins/modules/{module}.py" in ln]
    assert named and any(message in ln for ln in named), output[-4000:]
    assert not (tmp_path / "out" / "html" / "index.html").exists(), "a site was written anyway"
