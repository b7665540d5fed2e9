"""fstab and mountinfo: parsing and rendering of tricky lines."""

from __future__ import annotations

import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils._mounts import (
    Fstab,
    FstabEntry,
    containing_mount,
    escape,
    mounted_at,
    parse_mountinfo,
    unescape,
)

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
35 22 0:30 / /proc rw,nosuid - proc proc rw
40 22 7:0 / /srv/my\\040images rw,relatime shared:20 master:1 - xfs /dev/loop0 rw,attr2
41 22 7:1 / /srv/stack rw - ext4 /dev/loop1 rw
42 41 7:2 / /srv/stack rw - btrfs /dev/loop2 rw,space_cache=v2
43 22 0:50 /exports/a /mnt/nfs rw - nfs4 10.0.0.5:/exports/a rw,vers=4.2
broken line without separator
"""


def test_mountinfo_fields_and_escapes():
    mounts = parse_mountinfo(MOUNTINFO)
    assert len(mounts) == 6
    xfs = mounts[2]
    assert xfs.mount_point == "/srv/my images"
    assert xfs.fstype == "xfs"
    assert xfs.source == "/dev/loop0"
    assert "attr2" in xfs.opts
    assert "relatime" in xfs.opts


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("/srv/my images", "/dev/loop0"),
        ("/srv/my images/", "/dev/loop0"),
        ("/srv/stack", "/dev/loop2"),  # the last mount stacked on a path is the visible one
        ("/mnt/nfs", "10.0.0.5:/exports/a"),
        ("/srv", None),
    ],
)
def test_mounted_at(path, source):
    found = mounted_at(parse_mountinfo(MOUNTINFO), path)
    assert (found.source if found else None) == source


@pytest.mark.parametrize(
    ("path", "fstype"),
    [("/srv/my images/a/b", "xfs"), ("/srv/other", "ext4"), ("/srv/stack/x", "btrfs"), ("/", "ext4")],
)
def test_containing_mount(path, fstype):
    assert containing_mount(parse_mountinfo(MOUNTINFO), path).fstype == fstype


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("a b", "a\\040b"),
        ("tab\there", "tab\\011here"),
        ("new\nline", "new\\012line"),
        ("back\\slash", "back\\134slash"),
        ("plain", "plain"),
    ],
)
def test_escape_roundtrip(raw, text):
    assert escape(raw) == text
    assert unescape(text) == raw


FSTAB = """\
# /etc/fstab: static file system information.
#
UUID=1234-abcd / ext4 errors=remount-ro 0 1

/dev/sdb1\t/srv/my\\040images\txfs\tdefaults,noatime\t0\t2
nas:/export   /mnt/nfs nfs
garbage
  # indented comment
LABEL=x /data
"""


@pytest.mark.parametrize(
    ("mount_point", "expected"),
    [
        ("/", FstabEntry("UUID=1234-abcd", "/", "ext4", "errors=remount-ro", "0", "1")),
        ("/srv/my images", FstabEntry("/dev/sdb1", "/srv/my images", "xfs", "defaults,noatime", "0", "2")),
        ("/mnt/nfs", FstabEntry("nas:/export", "/mnt/nfs", "nfs", "defaults", "0", "0")),  # missing fields
        ("/data", FstabEntry("LABEL=x", "/data", "auto", "defaults", "0", "0")),
        ("/nowhere", None),
    ],
)
def test_fstab_find(mount_point, expected):
    assert Fstab.parse(FSTAB).find(mount_point) == expected


def test_fstab_untouched_renders_identically():
    fstab = Fstab.parse(FSTAB)
    assert fstab.render() == FSTAB
    assert not fstab.changed


def test_fstab_set_replaces_in_place_and_keeps_everything_else():
    fstab = Fstab.parse(FSTAB)
    fstab.set(FstabEntry("nas:/export", "/mnt/nfs", "nfs4", "vers=4.2,_netdev"))
    lines = fstab.render().splitlines()
    assert lines[5] == "nas:/export\t/mnt/nfs\tnfs4\tvers=4.2,_netdev\t0\t0"
    assert lines[:5] == FSTAB.splitlines()[:5]
    assert lines[6:] == FSTAB.splitlines()[6:]
    assert fstab.changed


def test_fstab_set_same_entry_is_no_change():
    fstab = Fstab.parse(FSTAB)
    fstab.set(FstabEntry("/dev/sdb1", "/srv/my images", "xfs", "defaults,noatime", "0", "2"))
    assert not fstab.changed


def test_fstab_set_appends_escaped_and_drops_duplicates():
    fstab = Fstab.parse(FSTAB + "dup /mnt/nfs nfs defaults 0 0\n")
    fstab.set(FstabEntry("//srv/share x", "/media/my share", "cifs", "credentials=/etc/c"))
    fstab.set(FstabEntry("nas:/export", "/mnt/nfs", "nfs", "defaults"))
    text = fstab.render()
    assert "//srv/share\\040x\t/media/my\\040share\tcifs\tcredentials=/etc/c\t0\t0\n" in text
    assert "dup /mnt/nfs" not in text
    assert Fstab.parse(text).find("/media/my share").spec == "//srv/share x"


def test_fstab_remove_only_that_entry():
    fstab = Fstab.parse(FSTAB)
    fstab.remove("/srv/my images/")
    assert fstab.render() == FSTAB.replace("/dev/sdb1\t/srv/my\\040images\txfs\tdefaults,noatime\t0\t2\n", "")


@pytest.mark.parametrize("text", ["", "# only a comment", "no-newline-at-end /x ext4"])
def test_fstab_edge_files(text):
    fstab = Fstab.parse(text)
    assert not fstab.changed
    fstab.set(FstabEntry("/dev/x", "/y", "ext4"))
    assert fstab.render().endswith("/dev/x\t/y\text4\tdefaults\t0\t0\n")
    assert fstab.render().startswith(text)


@pytest.mark.parametrize(
    ("old", "new", "remount"),
    [
        ("_netdev,noatime", "_netdev,noatime,x-systemd.after=o2cb.service", False),
        ("defaults", "defaults,nofail", False),
        ("vers=4.2", "vers=4.2,_netdev,comment=x", False),
        ("noatime", "relatime", True),
        ("vers=4.1,_netdev", "vers=4.2,_netdev", True),
        ("defaults", "defaults,user", True),  # user implies nosuid,nodev,noexec
    ],
)
def test_only_options_the_filesystem_sees_need_a_remount(old, new, remount):
    from ansible_collections.flexvdi.storage.plugins.module_utils._mounts import FstabEntry
    from ansible_collections.flexvdi.storage.plugins.module_utils._volumes import MountSpec, remount_from

    spec = MountSpec("/dev/sdz", "block", "ext4", new.split(","))
    entry = FstabEntry("/dev/sdz", "/v", "ext4", old, "0", "0")
    assert remount_from(None, entry, spec) == (old if remount else None)
    assert remount_from({"src": "/dev/sdz", "opts": old}, None, spec) == (old if remount else None)
    assert remount_from({"src": "/dev/other", "opts": old}, None, spec) is None
