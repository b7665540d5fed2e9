# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.flexvdi.storage.plugins.plugin_utils._role import gluster_probe_plan


class FilterModule:
    def filters(self):
        return {"gluster_probe_plan": gluster_probe_plan}
