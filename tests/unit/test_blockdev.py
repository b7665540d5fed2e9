"""Block devices: stable names, blkid signatures (one command, every kind), their words."""

from __future__ import annotations

import os

import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils import _blockdev
from ansible_collections.flexvdi.storage.plugins.module_utils._blockdev import (
    by_id_names,
    describe_signature,
    is_by_id,
    parse_blkid_export,
    signature,
)
from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/dev/disk/by-id/wwn-0x6001405abcdef", True),
        ("/dev/disk/by-id/virtio-flexvdi-brick-part1", True),
        ("/dev/disk/by-id/", False),
        ("/dev/disk/by-id/..", False),
        ("/dev/disk/by-id/a/b", False),
        ("/dev/disk/by-uuid/1234", False),
        ("/dev/sdb", False),
        (None, False),
    ],
)
def test_is_by_id(path, expected):
    assert is_by_id(path) is expected


def test_by_id_names_lists_every_name_of_the_same_node(tmp_path):
    target = tmp_path / "sdz"
    other = tmp_path / "sdy"
    target.touch()
    other.touch()
    names = tmp_path / "by-id"
    names.mkdir()
    for name, dest in (("wwn-0x1", target), ("scsi-31", target), ("wwn-0x2", other)):
        os.symlink(dest, names / name)
    found = by_id_names(str(names / "wwn-0x1"), directory=str(names))
    assert found == [str(names / "scsi-31"), str(names / "wwn-0x1")]
    assert by_id_names(str(tmp_path / "missing"), directory=str(names)) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "DEVNAME=/dev/loop1\nLABEL=S.V\nUUID=a4\nVERSION=0.90\nBLOCK_SIZE=1024\nTYPE=ocfs2\nUSAGE=filesystem\n",
            {"label": "S.V", "uuid": "a4", "type": "ocfs2", "usage": "filesystem"},
        ),
        ("DEVNAME=/dev/sdb\nPTUUID=x\nPTTYPE=gpt\n", {"pttype": "gpt"}),
        ("", {}),
    ],
)
def test_parse_blkid_export(text, expected):
    assert parse_blkid_export(text) == expected


class Runner:
    def __init__(self, rc, out="", err=""):
        self.answer = (rc, out, err)
        self.calls = []

    def run(self, argv, what, check=True, data=None, timeout=None):
        self.calls.append((argv, timeout))
        return self.answer


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((0, "TYPE=ext4\nUUID=u\n"), {"type": "ext4", "uuid": "u"}),
        ((2, ""), {}),
        ((8, ""), {"ambivalent": True}),
    ],
)
def test_signature_is_one_bounded_low_level_blkid(answer, expected):
    runner = Runner(*answer)
    assert signature(runner, "/dev/sdz", "volume V") == expected
    assert runner.calls == [(["blkid", "-p", "-o", "export", "--", "/dev/sdz"], _blockdev.READ_TIMEOUT)]


def test_blkid_errors_are_errors():
    with pytest.raises(StorageError, match=r"volume V: blkid -p /dev/sdz failed \(rc=4\): boom"):
        signature(Runner(4, "", "boom"), "/dev/sdz", "volume V")


@pytest.mark.parametrize(
    ("sig", "words"),
    [
        ({}, "nothing (blank)"),
        ({"type": "ext4", "label": "data", "uuid": "u"}, "ext4 labelled data (UUID u)"),
        ({"type": "LVM2_member"}, "LVM2_member"),
        ({"pttype": "dos"}, "a dos partition table"),
        ({"ambivalent": True}, "several signatures (blkid -p cannot tell which)"),
        ({"usage": "other"}, "an unknown signature"),
    ],
)
def test_describe_signature(sig, words):
    assert describe_signature(sig) == words


def test_identity_of_a_missing_device_says_so():
    found = _blockdev.identity(Runner(2), "/dev/disk/by-id/flexvdi-no-such-disk", "volume V")
    assert (found["present"], found["block"], found["kernel_name"], found["signature"]) == (False, False, None, {})


def test_udev_match_knows_a_multipath_map_by_its_dm_uuid(tmp_path, monkeypatch):
    """A multipath map (dm-N) has no wwid or serial of its own: its DM UUID, the same on every host
    and boot, is what a direct storage's udev rule matches."""
    from ansible_collections.flexvdi.storage.plugins.module_utils import _blockdev, _direct

    disk = tmp_path / "dm-1"
    (disk / "dm").mkdir(parents=True)
    (disk / "dm" / "uuid").write_text("mpath-36001405f1e0d0c010004000800000000\n")
    monkeypatch.setattr(_blockdev, "disk_dir", lambda device: str(disk))
    key = _blockdev.udev_match("/dev/dm-1")
    assert key == ("ENV{DM_UUID}", "mpath-36001405f1e0d0c010004000800000000")
    rule = _direct.rule_text(
        "San", "/dev/disk/by-id/dm-uuid-mpath-36001405f1e0d0c010004000800000000", *key, "libvirt-qemu"
    )
    assert 'ENV{DM_UUID}=="mpath-36001405f1e0d0c010004000800000000"' in rule
    # a disk's own WWN still comes first
    (disk / "wwid").write_text("naa.6001405f1e0d0c01\n")
    assert _blockdev.udev_match("/dev/dm-1") == ("ATTRS{wwid}", "naa.6001405f1e0d0c01")


def test_udev_match_without_any_stable_identity_is_none(tmp_path, monkeypatch):
    from ansible_collections.flexvdi.storage.plugins.module_utils import _blockdev

    disk = tmp_path / "dm-2"
    (disk / "dm").mkdir(parents=True)
    (disk / "dm" / "uuid").write_text("")
    monkeypatch.setattr(_blockdev, "disk_dir", lambda device: str(disk))
    monkeypatch.setattr(_blockdev, "loop_backing_file", lambda device: "")
    assert _blockdev.udev_match("/dev/dm-2") is None
