"""Direct storages: the udev rule's text and /proc/swaps, as data tables."""

from __future__ import annotations

import pytest

from ansible_collections.flexvdi.storage.plugins.module_utils._direct import active_swaps, rule_path, rule_text


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("ATTRS{wwid}", "naa.6001405abcdef", 'ATTRS{wwid}=="naa.6001405abcdef"'),
        ("ATTRS{serial}", "S455NY0M 123", 'ATTRS{serial}=="S455NY0M 123"'),
        # udev matches are globs: a glob character becomes ?, which matches it too
        ("ATTRS{serial}", "A*B?C[1]|D", 'ATTRS{serial}=="A?B?C?1??D"'),
        ("ATTR{loop/backing_file}", "/srv/disk.img", 'ATTR{loop/backing_file}=="/srv/disk.img"'),
    ],
)
def test_rule_matches_the_whole_disk_and_gives_it_to_qemu(key, value, match):
    text = rule_text("fast", "/dev/disk/by-id/x", key, value, "libvirt-qemu")
    rules = [line for line in text.splitlines() if not line.startswith("#")]
    assert rules == [
        f'ACTION!="remove", SUBSYSTEM=="block", ENV{{DEVTYPE}}=="disk", {match}, '
        'OWNER="libvirt-qemu", GROUP="disk", MODE="0660"'
    ]
    assert text.startswith("# flexvdi.storage: direct storage fast (/dev/disk/by-id/x)")


def test_rule_path_sorts_after_persistent_storage():
    assert rule_path("/etc/udev/rules.d", "fast") == "/etc/udev/rules.d/90-flexvdi-direct-fast.rules"


def test_active_swaps(tmp_path):
    swaps = tmp_path / "swaps"
    swaps.write_text(
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        "/dev/sdb2                               partition\t1048572\t\t0\t\t-2\n"
        "/swap\\040file                           file\t\t1048572\t\t0\t\t-3\n"
    )
    assert active_swaps(str(swaps)) == ["/dev/sdb2", "/swap file"]
    assert active_swaps(str(tmp_path / "missing")) == []
