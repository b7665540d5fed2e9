"""playbooks/storage_report.yml for real on the local inventory, and its web page in headless Chromium.

The tree of several hosts is proven from recorded results (tests/unit/test_report.py); here the
playbook gathers storage_info from this host, prints the tree, writes the page atomically where
storage_report_html says, fails only when storage_report_fail_on_problems asks, and refuses bad
input before reading anything. Chromium (Debian's package, started by the test) must render
the page without a single console message (a blocked fetch or a script error would be one) and
its screenshot must be far from blank; it is kept as .cache/test-artefacts/storage_report.png.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from headless_chromium import render

IS = "flexvdi.storage.image_storage"
EV = "flexvdi.storage.external_volume"
PLAYBOOK = "playbooks/storage_report.yml"
INVENTORY = "inventories/local/hosts.yml"
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = REPO_ROOT / ".cache" / "test-artefacts"


@pytest.fixture
def one_volume(run_module, tmp_paths):
    """Image storage Reported with the external volume Dir (a directory) in the test's registry."""
    common = {"registry": tmp_paths.registry, "fstab": tmp_paths.fstab}
    result = run_module(IS, dict(common, name="Reported", root=os.path.join(tmp_paths.root, "Reported")))
    assert not result.get("failed"), result.get("msg")
    mount_point = os.path.join(tmp_paths.root, "dir")
    os.mkdir(mount_point)
    result = run_module(
        EV, dict(common, image_storage="Reported", name="Dir", mount_point=mount_point, owner_qemu=True)
    )
    assert not result.get("failed"), result.get("msg")
    # The test's own view of the host: its registry, and no Samba config (this host's own smb.conf,
    # which a demo may have written, is not the test's).
    return {
        "storage_registry": tmp_paths.registry,
        "media_server_config_path": os.path.join(tmp_paths.root, "smb.conf"),
    }


def _tree(stdout):
    """The lines the playbook printed as the tree (the debug task's list)."""
    return re.findall(r'^\s+"(.*)",?$', stdout, re.M)


def test_live_report_on_the_local_inventory(run_playbook, one_volume, tmp_path):
    page = tmp_path / "report.html"
    result = run_playbook(PLAYBOOK, dict(one_volume, storage_report_html=str(page)), inventory=INVENTORY)
    assert result.rc == 0, result.stdout + result.stderr
    tree = _tree(result.stdout)
    assert tree[0] == "Storage report of 1 host(s) (localhost): 2 object(s), 0 problem(s)", tree
    assert tree[1:3] == ["Image storages:", "  Reported (hosts: localhost)"], tree
    assert re.match(r"    └─   Dir \[external\] .*/dir: localhost online; .* free of .*, 0 image\(s\)$", tree[3]), tree
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "Reported" in text and "localhost: online" in text
    assert oct(page.stat().st_mode & 0o777) == "0o644"
    assert not [p for p in tmp_path.iterdir() if p.name != "report.html"], "a temporary file was left behind"

    # Every volume is "low" under a threshold of 100%: shown, exit 0; failing only when asked.
    low = dict(one_volume, storage_report_free_threshold=100)
    shown = run_playbook(PLAYBOOK, low, inventory=INVENTORY)
    assert shown.rc == 0, shown.stdout
    assert "1 problem(s)" in shown.stdout and "! Reported (hosts: localhost)" in shown.stdout
    failing = run_playbook(PLAYBOOK, dict(low, storage_report_fail_on_problems=True), inventory=INVENTORY)
    assert failing.rc != 0
    assert "1 storage problem(s): volume Reported/Dir has" in failing.stdout


def test_summary_published_with_set_stats(run_playbook, one_volume):
    """AWX workflows read the summary from the job's custom stats (set_stats)."""
    low = dict(one_volume, storage_report_free_threshold=100)
    result = run_playbook(PLAYBOOK, low, inventory=INVENTORY, env={"ANSIBLE_SHOW_CUSTOM_STATS": "1"})
    assert result.rc == 0, result.stdout
    stats = result.stdout[result.stdout.index("CUSTOM STATS") :]
    found = re.search(r"RUN: (\{.*\})", stats)
    assert found, stats
    summary = json.loads(found.group(1))["flexvdi_storage_report"]
    assert (summary["hosts"], summary["objects"], summary["problems"]) == (1, 2, 1)
    assert summary["problem_list"][0].startswith("volume Reported/Dir has ")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"storage_report_html": "report.html"}, "fix storage_report_html"),
        ({"storage_report_html": "/nonexistent-dir/report.html"}, "fix storage_report_html"),
        ({"storage_report_free_threshold": "ten"}, "storage_report_free_threshold ten is not a percentage"),
    ],
)
def test_bad_input_is_named_and_nothing_is_written(run_playbook, one_volume, tmp_path, extra, message):
    result = run_playbook(PLAYBOOK, dict(one_volume, **extra), inventory=INVENTORY)
    assert result.rc != 0
    assert message in result.stdout, result.stdout
    assert "Read the storage tree of every host" not in result.stdout, "it read the hosts before refusing"
    assert not (REPO_ROOT / "report.html").exists(), "a relative page was written (ansible-playbook runs there)"


def _chromium(page, screenshot, profile):
    """Render ``page`` headless into ``screenshot``; the console messages it logged."""
    return render(page, profile, screenshot=screenshot).console


def test_the_page_renders_in_chromium_without_console_messages(run_playbook, one_volume, tmp_path):
    page = tmp_path / "report.html"
    result = run_playbook(PLAYBOOK, dict(one_volume, storage_report_html=str(page)), inventory=INVENTORY)
    assert result.rc == 0, result.stdout
    started = time.monotonic()
    # The control: a near-blank page that logs to the console and fetches, so the test can fail.
    control = tmp_path / "control.html"
    control.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        '</head><body><p>x</p><img src="https://example.invalid/a.png"></body></html>'
    )
    logged = _chromium(control, tmp_path / "control.png", tmp_path / "profile")
    assert logged, "chromium logged nothing for a page whose fetch is blocked: the check below would prove nothing"
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTEFACTS / "storage_report.png"
    screenshot.unlink(missing_ok=True)
    logged = _chromium(page, screenshot, tmp_path / "profile")
    assert logged == [], f"the report page logged to the console: {logged}"
    blank = (tmp_path / "control.png").stat().st_size
    assert screenshot.stat().st_size > 4 * blank, (
        f"the screenshot ({screenshot.stat().st_size} bytes) is close to a blank page's ({blank} bytes)"
    )
    assert time.monotonic() - started < 20, "chromium took too long"
