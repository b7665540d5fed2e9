# Sphinx configuration of the collection's docsite (scripts/docsite/build.py runs sphinx-build
# with it). It is what `antsibull-docs sphinx-init --use-current` writes, with two changes: the
# guides taken from README.md are Markdown (myst-parser), and intersphinx never goes online.

import os

project = "flexvdi.storage"
copyright = "flexVDI storage team"

title = "flexvdi.storage collection documentation"
html_short_title = "flexvdi.storage"

extensions = ["sphinx.ext.intersphinx", "sphinx_antsibull_ext", "myst_parser"]

pygments_style = "ansible"
highlight_language = "YAML+Jinja"

html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

# README sections, Markdown (myst-parser adds .md): only included by the guide pages, never pages.
exclude_patterns = ["_readme"]

# The generated plugin pages refer to a few labels of Ansible's own documentation (action
# plugins, common return values, configuration settings). The build writes their inventory
# (ansible_core.inv, next to the copy of this file it builds with) instead of fetching docs.ansible.com's.
intersphinx_mapping = {
    "ansible_devel": (
        "https://docs.ansible.com/projects/ansible/devel/",
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "ansible_core.inv"),
    ),
}

default_role = "any"
nitpicky = True
