# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.flexvdi.storage.plugins.plugin_utils import _report


def storage_report(results, threshold=_report.DEFAULT_THRESHOLD):
    try:
        return _report.merge(results, threshold)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(str(exc)) from exc


def storage_report_text(report):
    return _report.text(report)


def storage_report_html(report):
    return _report.html(report)


class FilterModule:
    def filters(self):
        return {
            "storage_report": storage_report,
            "storage_report_text": storage_report_text,
            "storage_report_html": storage_report_html,
        }
