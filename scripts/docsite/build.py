#!/usr/bin/env python3
"""Build the collection's docsite: `make docs`, or `build.py [--collection DIR] [--out DIR]`.

Run with the Python of .venv/tools (antsibull-docs, Sphinx, the Ansible theme, myst-parser);
the tools are taken from that interpreter's bin directory. Steps, each failing the build:

1. antsibull-docs collection --use-current --fail-on-error: the RST of every module, filter and
   role entry point (doc fragments are merged into the options of the plugins that use them),
   and the collection's extra docs (docs/docsite/). A plugin whose documentation does not
   parse fails here, named by its file.
2. The guides: every extra docs page holding ``.. readme-section: NAME`` gets README.md's text
   between ``<!-- docsite: NAME -->`` and ``<!-- end docsite: NAME -->`` instead of its
   placeholder, Markdown rendered by myst-parser. Code spans that name a plugin or role of the
   collection, or an option that only one of them has, become links to their documentation.
   The page's title must be the README heading above the section: nothing is written twice.
3. sphinx-build -W --keep-going: any warning fails the build (an unknown option reference
   O(...) in a plugin's documentation is one), after every warning has been printed.

The site is <out>/html (default .cache/docsite/html; .cache is gitignored and build-ignored).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BIN = Path(sys.executable).parent
NAMESPACE, NAME = "flexvdi", "storage"
FQCN = f"{NAMESPACE}.{NAME}"

# The labels of Ansible's own documentation that antsibull-docs' pages refer to, and where
# docs.ansible.com has them: the inventory intersphinx reads instead of fetching theirs.
ANSIBLE_CORE_LABELS = {
    "action_plugins": ("plugins/action.html#action-plugins", "Action plugins"),
    "common_return_values": ("reference_appendices/common_return_values.html#common-return-values", "Return Values"),
    "ansible_configuration_settings": (
        "reference_appendices/config.html#ansible-configuration-settings",
        "Ansible Configuration Settings",
    ),
}

SECTION = re.compile(r"<!-- docsite: (\w+) -->\n(.*?)<!-- end docsite: \1 -->", re.S)
PLACEHOLDER = re.compile(r"^\.\. readme-section: (\w+)\n.*?^\.\. end readme-section\n", re.S | re.M)
LABEL = re.compile(
    rf"^\s*\.\. _ansible_collections\.{NAMESPACE}\.{NAME}\.(\w+)_(module|filter|role)__parameter-(?:(\w+)__)?([\w-]+):$",
    re.M,
)


class BuildError(Exception):
    pass


def run(argv: list[str], aliases: dict[str, str] | None = None, **kwargs) -> None:
    """Run a tool, its output shown with each alias (a path under the work directory) replaced."""
    print("docs: " + " ".join(str(a) for a in argv), flush=True)
    proc = subprocess.run(argv, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    output = proc.stdout
    for alias, path in (aliases or {}).items():
        output = output.replace(alias, path)
    print(output, end="", flush=True)
    if proc.returncode != 0:
        raise BuildError(f"{Path(argv[0]).name} failed (exit {proc.returncode}), see its output above")


def antsibull(collection: Path, out: Path) -> Path:
    """The collection's RST, from a collections path that holds only ``collection``."""
    path = out / "collections"
    link = path / "ansible_collections" / NAMESPACE / NAME
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(collection)
    rst = out / "rst"
    rst.mkdir(mode=0o755)  # antsibull-docs wants it writable by its owner only
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(path), ANSIBLE_NOCOLOR="1", LC_ALL="C.UTF-8")
    env.pop("ANSIBLE_CONFIG", None)  # the repository's ansible.cfg is a developer's
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    run(
        [BIN / "antsibull-docs", "collection", "--use-current", "--fail-on-error", "--squash-hierarchy", "--cleanup", "everything",
         "--dest-dir", rst, FQCN],
        cwd=out, env=env, aliases={str(link): str(collection)},
    )  # fmt: skip
    return rst


def link_targets(plugins_dir: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Plugin and role names -> their ansplugin reference; option names -> their option references."""
    plugins: dict[str, str] = {}
    options: dict[str, list[str]] = {}
    for page in sorted(plugins_dir.glob("*_*.rst")):
        m = re.fullmatch(r"(\w+)_(module|filter|role)\.rst", page.name)
        if not m:
            continue
        plugins[m.group(1)] = f"{FQCN}.{m.group(1)}#{m.group(2)}"
        for name, kind, entry, option in LABEL.findall(page.read_text()):
            if "-" in option or option.startswith("_"):
                continue  # a suboption (a/b is spelled a/b, not matched) or a filter's _input
            where = f"role:{entry}" if kind == "role" else kind
            options.setdefault(option, []).append(f"{FQCN}.{name}#{where}:{option}")
    return plugins, options


def autolink(markdown: str, plugins: dict[str, str], options: dict[str, list[str]]) -> str:
    """Code spans outside code blocks that name a plugin, role or unambiguous option: links."""

    def span(m: re.Match[str]) -> str:
        text = m.group(1)
        short = text.removeprefix(f"{FQCN}.")
        if short in plugins and (short == text or text.startswith(FQCN)):
            return f"{{ansplugin}}`{text} <{plugins[short]}>`"
        option = re.fullmatch(r"([a-z_]+)(?:: .*)?", text)
        if option and len(options.get(option.group(1), [])) == 1:
            return f"{{ansoptref}}`{text} <{options[option.group(1)][0]}>`"
        return m.group(0)

    parts = re.split(r"(^```.*?^```$)", markdown, flags=re.S | re.M)
    for i in range(0, len(parts), 2):  # the odd ones are fenced code blocks
        parts[i] = re.sub(r"(?<!`)`([^`\n<>]+)`(?!`)", span, parts[i])
    return "".join(parts)


def guides(collection: Path, rst: Path) -> list[str]:
    """Put README.md's sections into the extra docs pages that ask for them."""
    readme_path = collection / "README.md"
    readme = readme_path.read_text()
    sections = {m.group(1): m for m in SECTION.finditer(readme)}
    docsite = rst / "docsite"
    plugins, options = link_targets(docsite.parent)
    snippets = rst / "_readme"
    snippets.mkdir()
    used = []
    for page in sorted(docsite.glob("*.rst")):
        source = collection / "docs" / "docsite" / "rst" / page.name
        text = page.read_text()
        m = PLACEHOLDER.search(text)
        if not m:
            continue
        name = m.group(1)
        if name not in sections:
            raise BuildError(f"{source}: README.md has no section marked <!-- docsite: {name} -->")
        before = readme[: sections[name].start()].rstrip("\n").rsplit("\n", 1)[-1]
        heading = before.removeprefix("## ")
        title = re.search(r"^\.\. _[^\n]*\n\n([^\n]+)\n=+\n", text)
        if not before.startswith("## ") or not title or title.group(1) != heading:
            raise BuildError(
                f"{source}: its title must be README.md's heading of section {name} ({before!r}), "
                f"the line above <!-- docsite: {name} -->"
            )
        (snippets / f"{name}.md").write_text(autolink(sections[name].group(2), plugins, options))
        include = (
            f".. include:: /_readme/{name}.md\n   :parser: myst_parser.sphinx_\n"
            f"\n.. README.md, section {heading!r}: edit it there.\n"
        )
        page.write_text(text[: m.start()] + include + text[m.end() :])
        used.append(name)
    unused = sorted(set(sections) - set(used))
    if unused:
        raise BuildError(f"{readme_path}: sections marked for the docsite but on no page of docs/docsite/rst: {unused}")
    return used


def intersphinx_inventory(path: Path) -> None:
    """A Sphinx objects.inv (version 2) of ANSIBLE_CORE_LABELS."""
    lines = "".join(f"{label} std:label -1 {uri} {title}\n" for label, (uri, title) in ANSIBLE_CORE_LABELS.items())
    header = "# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n# The remainder of this file is compressed using zlib.\n"
    path.write_bytes(header.encode() + zlib.compress(lines.encode()))


def build(collection: Path, out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rst = antsibull(collection, out)
    names = guides(collection, rst)
    print(f"docs: guides from README.md: {', '.join(names)}", flush=True)
    conf = out / "conf"
    conf.mkdir()
    shutil.copy(HERE / "conf.py", conf / "conf.py")
    intersphinx_inventory(conf / "ansible_core.inv")
    html = out / "html"
    warnings = out / "warnings.log"
    # The theme's logo links to "/" unless told: the root of whatever server, not this site's.
    home = yaml.safe_load((collection / "galaxy.yml").read_text())["repository"]
    try:
        run(
            [BIN / "sphinx-build", "-b", "html", "-c", conf, "-d", out / "doctrees", "-W", "--keep-going", "-q",
             "-j", "1", "-w", warnings, "-D", f"html_theme_options.documentation_home_url={home}", rst, html],
            env=dict(os.environ, LC_ALL="C.UTF-8"),
        )  # fmt: skip
    except BuildError:
        shutil.rmtree(html, ignore_errors=True)  # no site that looks built when it is not
        for line in warnings.read_text().splitlines() if warnings.exists() else []:
            source = source_of(collection, rst, line)
            if source:
                print(f"docs: ERROR: {source}: {line.split(': ', 1)[-1]}", file=sys.stderr)
        raise
    return html


def source_of(collection: Path, rst: Path, warning: str) -> Path | None:
    """The file of the collection that a Sphinx warning about a generated page comes from."""
    if warning.startswith(f"{rst}/_readme/"):
        return collection / "README.md"
    m = re.match(rf"{re.escape(str(rst))}/(docsite/)?(\w+?)(?:_(module|filter|role))?\.rst:", warning)
    if not m:
        return None
    name, kind = m.group(2), m.group(3)
    if m.group(1):
        return collection / "docs" / "docsite" / "rst" / f"{name}.rst"
    if kind == "module":
        return collection / "plugins" / "modules" / f"{name}.py"
    if kind == "role":
        return collection / "roles" / name / "meta" / "argument_specs.yml"
    if kind == "filter":
        yml = collection / "plugins" / "filter" / f"{name}.yml"
        return yml if yml.exists() else collection / "plugins" / "filter" / f"{name}.py"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--collection", type=Path, default=REPO, help="the collection's root (default: this checkout)")
    parser.add_argument("--out", type=Path, default=REPO / ".cache" / "docsite", help="work and output directory")
    args = parser.parse_args()
    try:
        html = build(args.collection.resolve(), args.out.resolve())
    except BuildError as exc:
        print(f"docs: ERROR: {exc}", file=sys.stderr)
        return 1
    print(f"docs: the site is {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
