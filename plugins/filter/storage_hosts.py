# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.flexvdi.storage.plugins.plugin_utils._role import storage_hosts


class FilterModule:
    def filters(self):
        return {"storage_hosts": storage_hosts}
