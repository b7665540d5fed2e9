"""Argument validation and src classification: bad input gets a clear error."""

from __future__ import annotations

import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError
from ansible_collections.flexvdi.storage.plugins.module_utils._volumes import (
    check_mount_point,
    check_name,
    mount_spec,
)


@pytest.mark.parametrize("name", ["MyImageStorage", "SAN-1", "a.b_c", "0"])
def test_good_names(name):
    check_name(name, "name")


@pytest.mark.parametrize("name", ["", "../x", "a/b", "-lead", "sp ace", "x" * 65, None])
def test_bad_names(name):
    with pytest.raises(StorageError, match="name .* is not a valid name"):
        check_name(name, "name")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/home/images", "/home/images"), ("/home/images/", "/home/images"), ("/a//b/../c", "/a/c")],
)
def test_mount_point_normalised(value, expected):
    assert check_mount_point(value, "v") == expected


@pytest.mark.parametrize("value", ["", None, "relative/path", "/", "//"])
def test_bad_mount_points(value):
    with pytest.raises(StorageError, match="must be an absolute path other than /"):
        check_mount_point(value, "v")


class _NoHost:
    runner = None


@pytest.mark.parametrize(
    ("src", "fstype", "opts", "kind", "want_fstype", "want_opts"),
    [
        ("nas:/exports/images", None, "vers=4.2", "network", "nfs", ["vers=4.2", "_netdev"]),
        ("10.0.0.5:/e", "nfs4", None, "network", "nfs4", ["_netdev"]),
        ("[fd00::5]:/e", None, "_netdev", "network", "nfs", ["_netdev"]),
        ("//server/media", None, None, "network", "cifs", ["_netdev"]),
        ("/tmp", None, None, "bind", "none", ["bind"]),
        ("/tmp", None, "rbind,ro", "bind", "none", ["rbind", "ro"]),
    ],
)
def test_mount_spec_classification(src, fstype, opts, kind, want_fstype, want_opts):
    spec = mount_spec(_NoHost(), src, fstype, opts, "v")
    assert (spec.kind, spec.fstype, spec.opts) == (kind, want_fstype, want_opts)


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ("/does/not/exist", "does not exist"),
        ("/dev/nonexistent-disk", "is not a block device present on this host"),
        ("UUID=0000-dead", "is not a block device present on this host"),
        ("justaname", "is neither a directory"),
    ],
)
def test_mount_spec_errors_name_src(src, message):
    with pytest.raises(StorageError, match=message) as err:
        mount_spec(_NoHost(), src, None, None, "external volume V of image storage S")
    assert "fix src" in err.value.msg
