# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side: do all hosts of a storage see the same disk? Private to the collection.

Each host reports what it sees at a device name (an ``identify: true`` run, registered by
the play); before a shared disk is formatted or mounted, the action plugin of the converging
task compares the reports of every host of the storage that is in this run. Every host's
task runs the same comparison on the same reports, so all of them fail together, naming the
hosts and both views, before any of them formats or mounts anything.

Same disk means: the device is a block device on each host, and the WWN, the serial (each
compared when either host reports one), the size and what blkid finds on it (type, label,
UUID, partition table) agree. Two blank disks that also share serial and size cannot be told
apart without writing to them; the format then tells: the other hosts wait for the label the
designated host writes, and never see it on a different disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ansible_collections.flexvdi.storage.plugins.module_utils._blockdev import describe_signature

SIGNATURE_KEYS = ("type", "label", "uuid", "pttype", "ambivalent")
_WORDS = {"wwn": "WWN", "serial": "serial", "size": "size", "content": "content"}


@dataclass
class Verdict:
    problem: str | None = None
    warnings: list = field(default_factory=list)
    compared: list = field(default_factory=list)


def find_report(value, storage, name):
    """The identity of volume ``storage``/``name`` in a registered result (one run or a loop), or None."""
    if not isinstance(value, Mapping):
        return None
    results = value.get("results")
    candidates = results if isinstance(results, list) else [value]
    for result in candidates:
        report = result.get("identity") if isinstance(result, Mapping) else None
        if isinstance(report, Mapping) and report.get("image_storage") == storage and report.get("name") == name:
            return report
    return None


def _size(size):
    if not isinstance(size, int):
        return "size unknown"
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if size >= scale:
            return "%.1f %s" % (size / scale, unit)
    return f"{size} bytes"


def describe(report):
    """One host's view in words: 'no block device' or '/dev/sdb: WWN ..., serial ..., 10.0 GiB, blank'."""
    if not report.get("present"):
        return "no such device"
    if not report.get("block"):
        return f"{report.get('kernel_name')}, which is not a block device"
    parts = [report.get("kernel_name") or "?"]
    parts.append("WWN " + report["wwn"] if report.get("wwn") else "no WWN")
    parts.append("serial " + report["serial"] if report.get("serial") else "no serial")
    parts.append(_size(report.get("size")))
    parts.append(describe_signature(report.get("signature") or {}))
    return parts[0] + ": " + ", ".join(parts[1:])


def differences(a, b):
    """The names of what differs between two views of a present block device ([] when the same disk)."""
    found = []
    for key in ("wwn", "serial"):
        if (a.get(key) or b.get(key)) and a.get(key) != b.get(key):
            found.append(key)
    if a.get("size") != b.get("size"):
        found.append("size")
    sig_a, sig_b = a.get("signature") or {}, b.get("signature") or {}
    if any(sig_a.get(k) != sig_b.get(k) for k in SIGNATURE_KEYS):
        found.append("content")
    return found


def compare(what, device, hosts, in_run, active, reports, label=None):
    """Whether the hosts of a storage that are in this run see the same disk at ``device``.

    ``hosts``: the storage's declared hosts, in order (the first formats); ``in_run``: the
    play's hosts (``ansible_play_hosts_all``); ``active``: those not failed so far
    (``ansible_play_hosts``); ``reports``: host -> identity (None: no report). ``label``: the
    volume's label, to tell whether the device is formatted already. Returns a Verdict.
    """
    verdict = Verdict()
    outside = [h for h in hosts if h not in in_run]
    gone = [h for h in hosts if h in in_run and h not in active]
    if outside:
        verdict.warnings.append(
            "%s: %s of the storage's hosts %s not in this run (--limit, serial, a job slice): what %s at %s "
            "cannot be compared now; it is compared when %s run"
            % (what, ", ".join(outside), "is" if len(outside) == 1 else "are", _sees(outside), device, _they(outside))
        )
    if gone:
        verdict.warnings.append(
            "%s: %s failed or was unreachable earlier in this run: what %s at %s is compared when %s run again"
            % (what, ", ".join(gone), _sees(gone), device, _they(gone))
        )
    silent = [h for h in hosts if h in active and reports.get(h) is None]
    if silent:
        verdict.problem = (
            "%s: %s %s in this run but reported nothing about %s: run this module with identify: true on every "
            "host of the storage in an earlier task (not with strategy: free) and register it under the name "
            "given in identified_by" % (what, ", ".join(silent), "is" if len(silent) == 1 else "are", device)
        )
        return verdict
    verdict.compared = [h for h in hosts if h in active]
    problems = []
    missing = [h for h in verdict.compared if not (reports[h].get("present") and reports[h].get("block"))]
    problems += ["%s sees %s" % (h, describe(reports[h])) for h in missing]
    seeing = [h for h in verdict.compared if h not in missing]
    if seeing:
        first = seeing[0]
        for h in seeing[1:]:
            differ = differences(reports[first], reports[h])
            if differ:
                problems.append(
                    "%s sees %s, where %s sees %s (different %s)"
                    % (h, describe(reports[h]), first, describe(reports[first]), ", ".join(_WORDS[d] for d in differ))
                )
    if problems:
        verdict.problem = (
            "%s: the hosts of its image storage do not all see the same disk at %s, so no host formats or mounts "
            "it: %s. Map the same LUN to every host under this name (zoning, iSCSI targets, multipath), or fix "
            "device" % (what, device, "; ".join(problems))
        )
        return verdict
    designated = hosts[0] if hosts else None
    formatted = any(
        (reports[h].get("signature") or {}).get("type") == "ocfs2"
        and (reports[h].get("signature") or {}).get("label") == label
        for h in seeing
    )
    if label is not None and designated is not None and designated not in active and not formatted:
        verdict.problem = (
            "%s: %s does not carry its filesystem (OCFS2 labelled %s) yet, and %s, the host that formats it "
            "(the first of the image storage's hosts), is not in this run: run the play on %s too (without "
            "--limit, or in the same slice)" % (what, device, label, designated, designated)
        )
    return verdict


def _sees(hosts):
    return "it sees" if len(hosts) == 1 else "they see"


def _they(hosts):
    return "it is" if len(hosts) == 1 else "they are"
