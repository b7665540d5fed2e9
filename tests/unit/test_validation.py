"""Argument validation and src classification: bad input gets a clear error."""

from __future__ import annotations

import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError
from ansible_collections.flexvdi.storage.plugins.module_utils._validate import (
    check_mount_fields,
    check_name,
    check_path,
    check_port,
)
from ansible_collections.flexvdi.storage.plugins.module_utils._volumes import mount_spec


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
    assert check_path(value, "v") == expected


@pytest.mark.parametrize("value", ["", None, "relative/path"])
def test_relative_mount_points(value):
    with pytest.raises(StorageError, match="mount_point .* must be an absolute path: fix mount_point"):
        check_path(value, "v")


@pytest.mark.parametrize(
    "value",
    [
        "/",
        "//",
        "/etc",
        "/etc/",
        "/etc/flexvdi",
        "/usr",
        "/usr/local",
        "/boot",
        "/var",
        "/var/lib",
        "/var/log/images",
        "/home",
        "/root",
        "/srv",
        "/opt",
        "/tmp",
        "/dev",
        "/dev/shm",
        "/proc",
        "/sys/fs",
        "/run",
        "/var/lib/flexvdi/volumes",
    ],
)
def test_system_directories_are_refused(value):
    with pytest.raises(StorageError, match="is a directory of the system itself.*fix mount_point"):
        check_path(value, "v")


@pytest.mark.parametrize(
    "value", ["/home/images", "/srv/images/nfs", "/var/lib/flexvdi/volumes/S", "/tmp/x", "/mnt/san", "/opt/vm"]
)
def test_subdirectories_are_fine(value):
    assert check_path(value, "v") == value


def test_a_symlink_to_a_system_directory_is_refused(tmp_path):
    link = tmp_path / "images"
    link.symlink_to("/etc")
    with pytest.raises(StorageError, match=r"resolves to /etc\)"):
        check_path(str(link), "v")


def test_the_option_is_named():
    with pytest.raises(StorageError, match="root /usr .*fix root$"):
        check_path("/usr", "image storage S", option="root")


@pytest.mark.parametrize("value", ["/srv/a\nb", "/srv/a\x00"])
def test_control_characters_in_paths(value):
    with pytest.raises(StorageError, match="control character"):
        check_path(value, "v")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"fstype": "nfs ext4"}, "fstype 'nfs ext4' is not one filesystem type name"),
        ({"fstype": "ext4\n/dev/sda / ext4"}, "is not one filesystem type name"),
        ({"fstype": "ext4#"}, "is not one filesystem type name"),
        ({"fstype": "nosuchfs"}, "fstype nosuchfs is unknown on this host"),
        ({"opts": "rw,#x"}, "option '#x' contains '#'"),
        ({"opts": "rw\n/dev/sda / ext4 defaults 0 0"}, r"contains '\\n'"),
        ({"opts": "rw noatime"}, "contains ' '"),
        ({"opts": 'vers="4"'}, "contains '\"'"),
        ({"src": "#/dev/sda"}, "starts with '#'"),
        ({"src": "/srv/a\nb"}, "control character"),
        ({"src": ""}, "is empty"),
    ],
)
def test_bad_fstab_fields(fields, message):
    with pytest.raises(StorageError, match=message) as err:
        check_mount_fields("v", **fields)
    option = next(iter(fields))
    assert f"fix {option}" in err.value.msg


@pytest.mark.parametrize(
    "fields",
    [
        {"fstype": "ext4"},
        {"fstype": "nfs4"},
        {"fstype": "fuse.sshfs"},
        {"fstype": "ocfs2"},
        {"opts": "vers=4.2,_netdev,nofail"},
        {"opts": "credentials=/etc/flexvdi/credentials/a.cred,uid=64055"},
        {"src": "/srv/with space"},
        {"src": "//server/share name"},
    ],
)
def test_good_fstab_fields(fields):
    check_mount_fields("v", **fields)


@pytest.mark.parametrize("port", [0, -1, 65536, 100000, True])
def test_bad_ports(port):
    with pytest.raises(StorageError, match="port .* is not a TCP port .*fix port"):
        check_port(port, "media storage m")


@pytest.mark.parametrize("port", [1, 445, 65535])
def test_good_ports(port):
    assert check_port(port, "m") == port


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
