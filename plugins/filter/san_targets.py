# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.flexvdi.storage.plugins.plugin_utils._san import SanError, duplicate_initiators, host_targets


def san_targets(targets, host, image_storages=None, inventory=None, heartbeat_threshold=None, timeouts=None):
    try:
        return host_targets(targets, host, image_storages or [], inventory, heartbeat_threshold, timeouts or {})
    except SanError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def san_duplicate_initiators(hosts, hostvars):
    """``hosts``: the play's; each one's initiator name from its check-mode run of san_client."""
    names = {}
    for host in hosts:
        probe = hostvars[host].get("__san_client_probe") if host in hostvars else None
        if isinstance(probe, dict) and probe.get("initiator_name"):
            names[str(host)] = probe["initiator_name"]
    return duplicate_initiators(names)


class FilterModule:
    def filters(self):
        return {"san_targets": san_targets, "san_duplicate_initiators": san_duplicate_initiators}
