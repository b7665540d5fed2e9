"""Headless Chromium (Debian's package) for the tests that render a page: one place that starts it.

`render(page, profile, screenshot=...)` or `render(page, profile, dom=True)` loads a local file
with no network use of its own and returns what the page logged to the console (any message is
a finding: a blocked fetch, a script error) and, when asked, the DOM after its scripts ran. Used
by the storage report's page (tests/integration) and the docsite (tests/ecosystem); both prove
with a control page that a console message is seen.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Rendered:
    console: list[str]  # Chromium's log lines of the page's console messages
    dom: str  # the serialized DOM (dom=True), else ""


def render(page: Path, profile: Path, *, screenshot: Path | None = None, dom: bool = False) -> Rendered:
    """Load ``page`` headless, into ``screenshot`` or printing its DOM (``dom``)."""
    if not shutil.which("chromium"):
        pytest.fail("chromium is missing: run `make setup` (Debian package chromium)", pytrace=False)
    argv = [
        "chromium",
        "--headless",
        "--no-sandbox",  # as root
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--window-size=1280,1400",
    ]
    if screenshot is not None:
        argv.append(f"--screenshot={screenshot}")
    if dom:
        argv.append("--dump-dom")
    argv.append(page.as_uri())
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert screenshot is None or screenshot.is_file(), proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return Rendered(console=console, dom=proc.stdout if dom else "")
