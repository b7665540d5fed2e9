# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.flexvdi.storage.plugins.plugin_utils._action import StorageAction


class ActionModule(StorageAction):
    """Runs flexvdi.storage.san_client with the inventory hostname.

    What crosses hosts (two hosts with one initiator name, the failover arithmetic against o2cb's
    heartbeat) is checked by the role flexvdi.storage.san_client on the controller, from every host's
    check-mode run of this module, before any host logs in.
    """
