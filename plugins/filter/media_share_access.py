# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.flexvdi.storage.plugins.plugin_utils._role import media_share_access


class FilterModule:
    def filters(self):
        return {"media_share_access": media_share_access}
