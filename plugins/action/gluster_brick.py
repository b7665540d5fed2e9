# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.flexvdi.storage.plugins.plugin_utils._action import StorageAction


class ActionModule(StorageAction):
    """Runs flexvdi.storage.gluster_brick with the inventory hostname."""
