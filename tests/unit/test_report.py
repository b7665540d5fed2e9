"""The cluster's storage report: storage_info results of several hosts merged into one tree."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from ansible_collections.flexvdi.storage.plugins.plugin_utils._report import html, merge, text

# Recorded storage_info results of three hosts: node2 lacks the NFS mount, node3 is low on space
# on its own SSD volume, node1 has a direct storage.
THREE_HOSTS = json.loads((Path(__file__).parent / "data" / "storage_info_three_hosts.json").read_text())

# The tree as the terminal shows it, compared exactly.
EXPECTED = (Path(__file__).parent / "data" / "storage_report_three_hosts.txt").read_text()


def three_hosts():
    return copy.deepcopy(THREE_HOSTS)


def test_three_hosts_in_one_tree_problems_first():
    assert text(merge(three_hosts())) == EXPECTED


def test_summary_counts_objects_and_problems():
    report = merge(three_hosts())
    assert report["summary"] == {"hosts": 3, "objects": 6, "problems": 2}
    nfs = report["image_storages"][0]["volumes"][0]
    assert nfs["status"] == {"node1": "online", "node2": "offline", "node3": "online"}
    assert nfs["images"] == ["ubuntu.qcow2", "win10-gold.qcow2"]


def test_threshold_decides_what_is_low():
    assert merge(three_hosts(), threshold=1)["summary"]["problems"] == 1
    # 40% free on NFS, 2% on node3's SSD, 75% on the others'
    assert merge(three_hosts(), threshold=50)["summary"]["problems"] == 3


@pytest.mark.parametrize("threshold", ["ten", -1, 101])
def test_threshold_must_be_a_percentage(threshold):
    with pytest.raises(ValueError, match="storage_report_free_threshold"):
        merge(three_hosts(), threshold=threshold)


@pytest.mark.parametrize(
    ("result", "words"),
    [
        (None, "host node3: no storage report (the host was not reached, or storage_info did not run)"),
        ({"unreachable": True, "msg": "ssh: connect timed out"}, "host node3: unreachable: ssh: connect timed out"),
        ({"failed": True, "msg": "registry corrupt"}, "host node3: storage_info failed: registry corrupt"),
    ],
)
def test_a_host_without_a_report_is_a_problem_and_its_objects_unknown(result, words):
    results = three_hosts()
    results["node3"] = result
    report = merge(results)
    assert report["problems"][0] == words
    nfs = report["image_storages"][0]["volumes"][0]
    assert nfs["status"]["node3"] == "unknown"
    assert report["media_storages"][0]["status"]["node3"] == "unknown"


def test_a_host_of_a_storage_that_lacks_it():
    results = three_hosts()
    results["node2"]["image_storages"] = [s for s in results["node2"]["image_storages"] if s["name"] != "Local"]
    results["node2"]["media_storages"] = []
    problems = merge(results)["problems"]
    assert "image storage Local is not registered on host node2, one of its hosts: converge it (site.yml)" in problems
    assert not any("Local/SSD is missing" in p for p in problems), "the storage's problem says it once"
    assert "media storage cifs is missing on host node2, one of its hosts: converge it (site.yml)" in problems


def test_hosts_outside_the_run_are_unknown_not_problems():
    results = three_hosts()
    del results["node2"], results["node3"]  # --limit node1
    report = merge(results)
    assert report["problems"] == []
    assert report["image_storages"][0]["volumes"][0]["status"] == {
        "node1": "online",
        "node2": "unknown",
        "node3": "unknown",
    }


def test_media_failed_last_operation_and_unresponsive():
    results = three_hosts()
    results["node1"]["media_storages"][0]["last_operation"] = {
        "message": "mount //192.0.2.20/media failed: Permission denied",
        "time": "2026-11-25T11:00:00Z",
        "ok": False,
    }
    results["node3"]["media_storages"][0].update(status="unresponsive", message="192.0.2.20 is not responding")
    report = merge(results)
    media = report["media_storages"][0]
    assert media["last_operation"]["host"] == "node1"
    assert media["problems"] == [
        "media storage cifs is unresponsive on host node3: 192.0.2.20 is not responding",
        "media storage cifs: the last operation failed on host node1: mount //192.0.2.20/media failed: Permission denied",
    ]
    assert "! cifs (//192.0.2.20/media" in text(report)


def test_direct_storages_offline_or_on_two_hosts():
    results = three_hosts()
    disk = dict(results["node1"]["direct_storages"][0], status="offline", qemu_access=False, message="no access")
    results["node2"]["direct_storages"] = [disk]
    report = merge(results)
    assert [(d["host"], d["problems"]) for d in report["direct_storages"]] == [
        (
            "node1",
            ["direct storage fastdisk is registered on several hosts (node1, node2); it is one host's disk: fix host"],
        ),
        (
            "node2",
            [
                "direct storage fastdisk is offline on host node2: no access",
                "direct storage fastdisk is registered on several hosts (node1, node2); it is one host's disk: "
                "fix host",
            ],
        ),
    ]


def test_hosts_that_disagree_on_a_storage_hosts():
    results = three_hosts()
    results["node3"]["image_storages"][1]["hosts"] = ["node3"]
    problems = merge(results)["problems"]
    assert any(p.startswith("image storage Local: its hosts differ between hosts") for p in problems), problems


def test_html_is_self_contained_and_escaped():
    results = three_hosts()
    results["node1"]["image_storages"][0]["volumes"][0]["mount_point"] = "/srv/<script>alert(1)</script>"
    page = html(merge(results))
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert not re.search(r"(src|href)=\"(?!data:)", page), "the page must fetch nothing"
    assert "http://" not in page and "https://" not in page
    assert "default-src 'none'" in page
    assert page.count('class="badge bad"') == 1  # NFS offline on node2
    assert 'class="bar low"' in page  # node3's SSD


# --- who may reach the storage ---------------------------------------------------------------


def test_a_gluster_volume_open_to_every_address_is_a_problem():
    results = three_hosts()
    volume = results["node1"]["image_storages"][0]["volumes"][0]
    volume.update(type="gluster", auth_allow=["*"])
    report = merge(results)
    problems = [p for p in report["problems"] if "open to every address" in p]
    assert problems == [
        f"volume {report['image_storages'][0]['name']}/{volume['name']} is open to every address (auth.allow *, read "
        "on node1): any machine that reaches its bricks can mount the guests' disks; converge it without auth.allow "
        "in its options to allow only its hosts"
    ]
    volume["auth_allow"] = ["10.0.0.11", "10.0.0.12"]
    report = merge(results)
    assert not [p for p in report["problems"] if "open to every address" in p]
    assert report["image_storages"][0]["volumes"][0]["auth_allow"] == ["10.0.0.11", "10.0.0.12"]


def test_a_media_share_open_to_every_address_is_a_problem_and_shown():
    results = three_hosts()
    results["node1"]["media_shares"] = [{"share": "media", "path": "/srv/flexvdi/media", "hosts_allow": ["*"]}]
    results["node2"]["media_shares"] = [
        {"share": "iso", "path": "/srv/iso", "hosts_allow": ["127.0.0.1", "::1", "10.0.0.11"]}
    ]
    report = merge(results)
    assert "media share //node1/media is open to every address (no hosts allow)" in " ".join(report["problems"])
    assert not [p for p in report["problems"] if "//node2/iso" in p]
    shown = text(report)
    assert "! //node1/media (/srv/flexvdi/media): hosts allow *" in shown
    assert "  //node2/iso (/srv/iso): hosts allow 127.0.0.1 ::1 10.0.0.11" in shown
    assert "Media shares served:" not in text(merge(three_hosts())), "no section when no host serves one"


def test_served_shares_are_read_from_the_roles_lines_only(tmp_path):
    from ansible_collections.flexvdi.storage.plugins.module_utils._media import served_shares

    config = tmp_path / "smb.conf"
    config.write_text(
        "[global]\n   hosts allow = 10.9.9.9\n[other]\n   path = /srv/other\n\n"
        "# BEGIN flexvdi.storage.media_server\n[global]\n   server min protocol = SMB3\n\n"
        "[media]\n   path = /srv/flexvdi/media\n   Hosts  Allow = 127.0.0.1 ::1, 10.0.0.11\n   hosts deny = ALL\n"
        "[open]\n   path = /srv/open\n"
        "# END flexvdi.storage.media_server\n"
    )
    assert served_shares(str(config)) == [
        {"share": "media", "path": "/srv/flexvdi/media", "hosts_allow": ["127.0.0.1", "::1", "10.0.0.11"]},
        {"share": "open", "path": "/srv/open", "hosts_allow": ["*"]},
    ]
    assert served_shares(str(tmp_path / "missing.conf")) == []
