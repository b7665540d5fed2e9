# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.flexvdi.storage.plugins.plugin_utils._action import awx_job_slice


class FilterModule:
    def filters(self):
        return {"awx_job_slice": awx_job_slice}
