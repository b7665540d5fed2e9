# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-host registry of storage objects. Private to the collection.

A JSON file (default /etc/flexvdi/storage.json) with a schema version. It holds the
objects this host takes part in, their parameters and mount points, never a secret.
It is read without a lock (writes are atomic renames) and written under an fcntl lock
held for the whole plan-and-apply of a module run. A registry this code does not
understand is an error, never overwritten.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os

from ._errors import StorageError
from ._fileio import atomic_write, locked, read_text

SCHEMA_VERSION = 1
DEFAULT_PATH = "/etc/flexvdi/storage.json"
KINDS = ("image_storages", "media_storages", "direct_storages")


def empty():
    data = {"schema_version": SCHEMA_VERSION}
    for kind in KINDS:
        data[kind] = {}
    return data


def validate(data, path):
    """Raise StorageError unless ``data`` is a registry of the version we know."""
    fix = "move it away to start an empty registry, or restore it from a backup"
    if not isinstance(data, dict):
        raise StorageError(f"registry {path} is not a JSON object: {fix}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StorageError(
            "registry %s has schema_version %r, this version of flexvdi.storage knows %d: "
            "upgrade the collection, or %s" % (path, version, SCHEMA_VERSION, fix)
        )
    for kind in KINDS:
        objects = data.get(kind, {})
        if not isinstance(objects, dict) or not all(isinstance(v, dict) for v in objects.values()):
            raise StorageError(f"registry {path}: '{kind}' is not a mapping of objects: {fix}")
    for name, storage in data.get("image_storages", {}).items():
        if not isinstance(storage.get("volumes", {}), dict):
            raise StorageError(f"registry {path}: image storage {name} has invalid volumes: {fix}")
    return data


def render(data):
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


class Registry:
    def __init__(self, path=DEFAULT_PATH):
        self.path = path
        self._text = None

    @property
    def exists(self):
        return os.path.exists(self.path)

    def load(self):
        """The registry's data (a fresh copy); an empty one when the file does not exist."""
        text = read_text(self.path, default="")
        self._text = text
        if not text.strip():
            return empty()
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StorageError(
                f"registry {self.path} is corrupt ({exc}): it was left untouched; move it away to start an "
                "empty registry, or restore it from a backup"
            ) from exc
        data = validate(data, self.path)
        for kind in KINDS:
            data.setdefault(kind, {})
        return data

    @property
    def text(self):
        """The file's text as last loaded ('' when it did not exist)."""
        return self._text if self._text is not None else read_text(self.path, default="")

    def lock(self):
        """An exclusive lock for the whole read-plan-write cycle of one module run.

        The lock file lives in /run/lock (not next to the registry) so that taking it
        never creates the registry's directory, even on a run that changes nothing.
        """
        digest = hashlib.sha1(os.path.abspath(self.path).encode()).hexdigest()[:16]
        lock_dir = "/run/lock" if os.path.isdir("/run/lock") else "/tmp"
        return locked(os.path.join(lock_dir, f"flexvdi-storage-{digest}.lock"))

    def save(self, data):
        atomic_write(self.path, render(validate(copy.deepcopy(data), self.path)), mode=0o644)
        self._text = render(data)

    def restore(self, text):
        """Put back the text a failed run started from ('' means: there was no file)."""
        if text:
            atomic_write(self.path, text, mode=0o644)
        elif os.path.exists(self.path):
            os.unlink(self.path)
        self._text = text


def image_storage(data, name, path):
    """The registered image storage ``name`` or a StorageError that says how to create it."""
    storage = data["image_storages"].get(name)
    if storage is None:
        raise StorageError(
            f"image storage {name} is not registered on this host (registry {path}): create it first with "
            "flexvdi.storage.image_storage listing this host in hosts, or fix the image_storage option"
        )
    return storage
