# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.flexvdi.storage.plugins.plugin_utils._ocfs2_conf import DEFAULT_PORT, ConfError, plan
from ansible_collections.flexvdi.storage.plugins.plugin_utils._role import truthy


def _host_var(hostvars, host, name):
    try:
        value = hostvars[host].get(name)
    except Exception as exc:  # a host variable that does not template (undefined reference...)
        raise AnsibleFilterError("ocfs2_cluster: %s of host %s cannot be read: %s" % (name, host, exc)) from exc
    return value


def _members(hosts, hostvars):
    members = []
    for host in hosts:
        host = str(host)
        if host not in hostvars:
            members.append({"host": host, "in_inventory": False})
            continue
        facts = _host_var(hostvars, host, "ansible_facts")
        members.append(
            {
                "host": host,
                "address": _host_var(hostvars, host, "ocfs2_cluster_address"),
                "node_name": _host_var(hostvars, host, "ocfs2_cluster_node_name") or None,
                "allow_public": truthy(_host_var(hostvars, host, "ocfs2_cluster_allow_public")),
                "facts_nodename": facts.get("nodename") if isinstance(facts, Mapping) else None,
            }
        )
    return members


def ocfs2_cluster_conf(
    hosts,
    hostvars,
    name,
    current,
    port=DEFAULT_PORT,
    host=None,
    config_path="/etc/ocfs2/cluster.conf",
    o2cb_settings=None,
    on_error="fail",
):
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError(
            "ocfs2_cluster_hosts must be a list of inventory hostnames, not %s: list every member, written out "
            "(for example groups['vdi_hosts'])." % type(hosts).__name__
        )
    if on_error not in ("fail", "return"):
        raise AnsibleFilterError("ocfs2_cluster_conf: on_error must be fail or return, not %r" % (on_error,))
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    try:
        return plan(str(name), _members(hosts, hostvars), list(current or []), port, host, config_path, o2cb_settings)
    except ConfError as exc:
        if on_error == "return":
            return {"errors": exc.messages}
        raise AnsibleFilterError("ocfs2_cluster: %s" % " ".join(exc.messages)) from None


class FilterModule:
    def filters(self):
        return {"ocfs2_cluster_conf": ocfs2_cluster_conf}
