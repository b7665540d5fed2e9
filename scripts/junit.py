#!/usr/bin/env python3
"""JUnit bookkeeping for `make test` (standard library only).

    junit.py summary DIR              print "N passed, N failed[, N skipped]" summed over DIR/*.xml
    junit.py record DIR NAME RC MSG   write DIR/NAME.xml: one case, passed if RC is 0
    junit.py begin DIR TIER           remember which JUnit files exist before TIER runs
    junit.py end DIR TIER RC          after TIER: if it wrote no JUnit file, record one case for
                                      it (sanity, lint, a lab without JUnit); if it failed but
                                      its files hold no failure, record the failure too

The summary counts every pytest case once; the tiers that are not pytest count as one case
each, so a failed lint or sanity run shows in the failed count, not only in the exit code.
"""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import quoteattr


def counts(path: Path) -> tuple[int, int, int]:
    """Return (tests, failed, skipped) of one JUnit file (testsuite or testsuites root)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        print(f"junit: {path} is not valid XML ({exc}); counted as one failure", file=sys.stderr)
        return 1, 1, 0
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = failed = skipped = 0
    for suite in suites:
        tests += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return tests, failed, skipped


def files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.xml"))


def summary(directory: Path) -> int:
    tests = failed = skipped = 0
    for path in files(directory):
        t, f, s = counts(path)
        tests, failed, skipped = tests + t, failed + f, skipped + s
    passed = tests - failed - skipped
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 0


def record(directory: Path, name: str, rc: int, message: str) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    failed = 1 if rc else 0
    body = f"<failure message={quoteattr(message)}/>" if failed else ""
    (directory / f"{name}.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<testsuites><testsuite name={quoteattr(name)} tests="1" failures="{failed}" errors="0" skipped="0">'
        f'<testcase classname="tier" name={quoteattr(name)}>{body}</testcase>'
        "</testsuite></testsuites>\n"
    )
    return 0


def begin(directory: Path, tier: str) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f".{tier}.before").write_text("\n".join(p.name for p in files(directory)))
    return 0


def end(directory: Path, tier: str, rc: int) -> int:
    marker = directory / f".{tier}.before"
    before = set(marker.read_text().split()) if marker.exists() else set()
    marker.unlink(missing_ok=True)
    new = [p for p in files(directory) if p.name not in before]
    if not new:
        return record(directory, tier, rc, f"{tier} exited with status {rc}")
    if rc and not any(counts(p)[1] for p in new):
        return record(directory, f"{tier}-exit", rc, f"{tier} exited with status {rc}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "summary":
        return summary(Path(argv[1]))
    if len(argv) == 5 and argv[0] == "record":
        return record(Path(argv[1]), argv[2], int(argv[3]), argv[4])
    if len(argv) == 3 and argv[0] == "begin":
        return begin(Path(argv[1]), argv[2])
    if len(argv) == 4 and argv[0] == "end":
        return end(Path(argv[1]), argv[2], int(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
