"""Registry: validation, corrupt and unknown versions are errors, atomic saves."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError
from ansible_collections.flexvdi.storage.plugins.module_utils._registry import (
    SCHEMA_VERSION,
    Registry,
    empty,
    image_storage,
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is corrupt"),
        ("[]", "is not a JSON object"),
        ('{"schema_version": 99}', "schema_version 99"),
        ("{}", "schema_version None"),
        ('{"schema_version": 1, "image_storages": []}', "'image_storages' is not a mapping"),
        ('{"schema_version": 1, "image_storages": {"S": {"volumes": []}}}', "invalid volumes"),
    ],
)
def test_bad_registries_are_errors_and_untouched(tmp_path, text, message):
    path = tmp_path / "storage.json"
    path.write_text(text)
    with pytest.raises(StorageError, match=message) as err:
        Registry(str(path)).load()
    assert "move it away" in err.value.msg or "upgrade" in err.value.msg
    assert path.read_text() == text


def test_missing_registry_is_empty_and_not_created(tmp_path):
    registry = Registry(str(tmp_path / "sub" / "storage.json"))
    assert registry.load() == empty()
    assert not (tmp_path / "sub").exists()


def test_save_is_atomic_sorted_and_restorable(tmp_path):
    path = tmp_path / "storage.json"
    registry = Registry(str(path))
    data = registry.load()
    data["image_storages"]["S"] = {"hosts": ["a"], "root": "/r", "volumes": {}}
    registry.save(data)
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["storage.json"]  # no temp file left
    registry.restore("")
    assert not path.exists()


def test_unknown_image_storage_names_the_fix():
    with pytest.raises(StorageError, match="create it first with flexvdi.storage.image_storage"):
        image_storage(empty(), "Nope", "/etc/flexvdi/storage.json")


def test_lock_does_not_create_registry_directory(tmp_path):
    registry = Registry(str(tmp_path / "absent" / "storage.json"))
    with registry.lock():
        pass
    assert not (tmp_path / "absent").exists()
