"""Do all hosts of a storage see the same disk? The controller's comparison, as a table."""

from __future__ import annotations

import pytest

from ansible_collections.flexvdi.storage.plugins.plugin_utils._identity import (
    compare,
    describe,
    differences,
    find_report,
)

DEV = "/dev/disk/by-id/wwn-0x6001405abcdef"
WHAT = "OCFS2 volume V of image storage S"
HOSTS = ["n1", "n2", "n3"]


def seen(host, **changes):
    report = {
        "host": host,
        "image_storage": "S",
        "name": "V",
        "device": DEV,
        "label": "S.V",
        "hosts": HOSTS,
        "present": True,
        "block": True,
        "kernel_name": "/dev/sdb",
        "partition": False,
        "wwn": "naa.6001405abcdef",
        "serial": "abcdef",
        "by_id": [DEV],
        "size": 10 * 2**30,
        "signature": {},
    }
    report.update(changes)
    return report


def everyone(**per_host):
    return {h: per_host.get(h, seen(h)) for h in HOSTS}


def test_the_same_disk_everywhere_passes():
    verdict = compare(WHAT, DEV, HOSTS, HOSTS, HOSTS, everyone(n2=seen("n2", kernel_name="/dev/sdc")), label="S.V")
    assert verdict.problem is None
    assert verdict.warnings == []
    assert verdict.compared == HOSTS


@pytest.mark.parametrize(
    ("n2", "words"),
    [
        (
            seen("n2", wwn="naa.6001405999999"),
            "n2 sees /dev/sdb: WWN naa.6001405999999, serial abcdef, 10.0 GiB, "
            "nothing (blank), where n1 sees /dev/sdb: WWN naa.6001405abcdef, serial abcdef, 10.0 GiB, nothing (blank) (different WWN)",
        ),
        (seen("n2", present=False, block=False, kernel_name=None), "n2 sees no such device"),
        (seen("n2", block=False, kernel_name="/dev/sdb"), "n2 sees /dev/sdb, which is not a block device"),
        (seen("n2", serial="other"), "(different serial)"),
        (seen("n2", wwn="", serial=""), "(different WWN, serial)"),
        (seen("n2", size=5 * 2**30), "5.0 GiB, nothing (blank), where n1 sees"),
        (seen("n2", signature={"type": "ext4", "uuid": "u2"}), "10.0 GiB, ext4 (UUID u2), where n1 sees"),
        (seen("n2", signature={"type": "ext4", "uuid": "u2"}), "nothing (blank) (different content)"),
    ],
)
def test_a_host_that_sees_another_disk_or_none_fails_every_host(n2, words):
    reports = everyone(n2=n2)
    for me in HOSTS:  # every host's action plugin runs the same comparison: the same verdict
        verdict = compare(WHAT, DEV, HOSTS, HOSTS, HOSTS, dict(reports), label="S.V")
        assert verdict.problem is not None, me
        assert verdict.problem.startswith(
            f"{WHAT}: the hosts of its image storage do not all see the same disk at {DEV}"
        )
        assert "no host formats or mounts it" in verdict.problem
        assert "fix device" in verdict.problem
        assert words in verdict.problem, verdict.problem


def test_every_disagreeing_host_is_named():
    reports = everyone(n2=seen("n2", present=False, block=False, kernel_name=None), n3=seen("n3", wwn="naa.9"))
    problem = compare(WHAT, DEV, HOSTS, HOSTS, HOSTS, reports, label="S.V").problem
    assert "n2 sees no such device" in problem
    assert "n3 sees /dev/sdb: WWN naa.9" in problem


def test_the_first_host_that_sees_the_disk_is_the_reference():
    reports = everyone(n1=seen("n1", present=False, block=False, kernel_name=None))
    problem = compare(WHAT, DEV, HOSTS, HOSTS, HOSTS, reports, label="S.V").problem
    assert "n1 sees no such device" in problem
    assert "n3 sees" not in problem, "n2 and n3 agree with each other"


def test_hosts_outside_the_run_are_warned_about_not_compared():
    reports = {"n1": seen("n1"), "n2": seen("n2")}
    verdict = compare(WHAT, DEV, HOSTS, ["n1", "n2"], ["n1", "n2"], reports, label="S.V")
    assert verdict.problem is None
    assert verdict.compared == ["n1", "n2"]
    assert verdict.warnings == [
        f"{WHAT}: n3 of the storage's hosts is not in this run (--limit, serial, a job slice): what it sees at "
        f"{DEV} cannot be compared now; it is compared when it is run"
    ]


def test_hosts_that_failed_earlier_are_warned_about():
    verdict = compare(WHAT, DEV, HOSTS, HOSTS, ["n1", "n3"], {"n1": seen("n1"), "n3": seen("n3")}, label="S.V")
    assert verdict.problem is None
    assert "n2 failed or was unreachable earlier in this run" in verdict.warnings[0]


def test_a_host_in_the_run_without_a_report_fails():
    reports = everyone()
    reports["n2"] = None
    problem = compare(WHAT, DEV, HOSTS, HOSTS, HOSTS, reports, label="S.V").problem
    assert "n2 is in this run but reported nothing" in problem
    assert "identify: true on every host" in problem


def test_unformatted_device_without_the_designated_host_fails_fast():
    """n1 formats; under --limit n2,n3 waiting for it would only time out."""
    reports = {"n2": seen("n2"), "n3": seen("n3")}
    problem = compare(WHAT, DEV, HOSTS, ["n2", "n3"], ["n2", "n3"], reports, label="S.V").problem
    assert "does not carry its filesystem (OCFS2 labelled S.V) yet, and n1, the host that formats it" in problem
    assert "run the play on n1 too" in problem


def test_formatted_device_needs_no_designated_host():
    """A re-run with the first host unreachable still works on the others: they see the label."""
    ours = {"type": "ocfs2", "label": "S.V", "uuid": "u1"}
    reports = {"n2": seen("n2", signature=ours), "n3": seen("n3", signature=ours)}
    verdict = compare(WHAT, DEV, HOSTS, HOSTS, ["n2", "n3"], reports, label="S.V")
    assert verdict.problem is None
    assert "n1 failed or was unreachable" in verdict.warnings[0]


@pytest.mark.parametrize(
    ("a", "b", "found"),
    [
        ({"wwn": "x"}, {"wwn": "x"}, []),
        ({"wwn": ""}, {"wwn": ""}, []),
        ({"wwn": "x"}, {"wwn": ""}, ["wwn"]),
        ({"size": 1}, {"size": 2}, ["size"]),
        ({"signature": {"label": "a"}}, {"signature": {"label": "b"}}, ["content"]),
    ],
)
def test_differences(a, b, found):
    assert differences(a, b) == found


def test_describe():
    assert describe(seen("n1", signature={"type": "ocfs2", "label": "S.V", "uuid": "u"})) == (
        "/dev/sdb: WWN naa.6001405abcdef, serial abcdef, 10.0 GiB, ocfs2 labelled S.V (UUID u)"
    )
    assert describe(seen("n1", wwn="", serial="", size=None, signature={"pttype": "gpt"})) == (
        "/dev/sdb: no WWN, no serial, size unknown, a gpt partition table"
    )


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ({"identity": seen("n1")}, True),
        ({"results": [{"identity": dict(seen("n1"), name="W")}, {"identity": seen("n1")}]}, True),
        ({"results": [{"skipped": True}]}, False),
        ({"identity": dict(seen("n1"), image_storage="T")}, False),
        (None, False),
        ("text", False),
    ],
)
def test_find_report_in_a_single_or_loop_result(value, found):
    assert (find_report(value, "S", "V") is not None) is found
