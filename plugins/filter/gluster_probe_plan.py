# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.flexvdi.storage.plugins.plugin_utils import _role


def gluster_probe_plan(pools, hosts, hostvars):
    try:
        return _role.gluster_probe_plan(pools, hosts, hostvars)
    except ValueError as exc:
        raise AnsibleFilterError(f"gluster_cluster: {exc}. Nothing was changed.") from None


class FilterModule:
    def filters(self):
        return {"gluster_probe_plan": gluster_probe_plan}
