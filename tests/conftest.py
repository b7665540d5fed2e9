"""Shared by every pytest tier: make the collection importable under its real name.

`make setup` links .cache/collections/ansible_collections/flexvdi/storage to the repository
root, so with .cache/collections on sys.path unit tests import the working tree as

    from ansible_collections.flexvdi.storage.plugins.module_utils._mounts import parse_mountinfo

exactly as Ansible itself imports it on a managed host. Ansible processes started by the tests
read the repository's ansible.cfg, whatever their working directory.
"""

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS_DIR = REPO_ROOT / ".cache" / "collections"
_LINK = COLLECTIONS_DIR / "ansible_collections" / "flexvdi" / "storage"

if not _LINK.is_dir():
    raise pytest.UsageError(f"{_LINK} is missing: run `make setup` first")

if str(COLLECTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_DIR))

os.environ.setdefault("ANSIBLE_CONFIG", str(REPO_ROOT / "ansible.cfg"))
