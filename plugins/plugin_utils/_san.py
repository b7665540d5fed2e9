# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the SAN declaration (role san_client). Private to the collection.

Checks ``flexvdi_san_targets`` on the controller, before any host is touched, with the same rules the
module applies on the host (module_utils/_san.py, _iscsi.py): names, portals (addresses are resolved
on the hosts, which reach the storage network), CHAP, LUNs; the hosts of each target (its ``hosts``,
or the hosts of the image storage named by ``storage``); the failover arithmetic against o2cb's
heartbeat when OCFS2 is declared; and two hosts of the play with one initiator name.
"""

from __future__ import annotations

from ansible_collections.flexvdi.storage.plugins.module_utils import _iscsi, _san
from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError


class SanError(Exception):
    pass


def _hosts_of(target, storages, what):
    if target.get("hosts") is not None and target.get("storage") is not None:
        raise SanError(f"{what}: set hosts or storage, not both")
    if target.get("storage") is not None:
        found = [s for s in storages if isinstance(s, dict) and s.get("name") == target["storage"]]
        if not found:
            raise SanError(
                f"{what}: storage {target['storage']} is not an image storage of flexvdi_image_storages: fix storage"
            )
        return list(found[0].get("hosts") or [])
    hosts = target.get("hosts")
    if not isinstance(hosts, list) or not hosts:
        raise SanError(
            f"{what}: hosts is missing: list the hosts that log in (hosts: \"{{{{ groups['vdi_hosts'] }}}}\"), or name an image storage in storage"
        )
    return [str(h) for h in hosts]


def host_targets(targets, host, storages, inventory, heartbeat_threshold, timeouts):
    """The targets ``host`` connects to, checked; raises SanError naming the option and the fix."""
    if not isinstance(targets, list):
        raise SanError("flexvdi_san_targets must be a list of targets: fix flexvdi_san_targets")
    try:
        checked = _san.validate({"targets": targets}, resolve=False)
    except StorageError as exc:
        raise SanError(exc.msg + ". Nothing was changed on any host") from exc
    mine = []
    for raw, target in zip(targets, checked):
        hosts = _hosts_of(raw, storages, target["what"])
        unknown = [h for h in hosts if inventory is not None and h not in inventory]
        if unknown:
            raise SanError(f"{target['what']}: hosts {', '.join(unknown)} not in the inventory: fix hosts")
        if host in hosts:
            mine.append({k: raw.get(k) for k in _san.TARGET_KEYS if k in raw})
    if heartbeat_threshold and timeouts:
        try:
            _iscsi.check_failover(
                _iscsi.failover_seconds(
                    timeouts["noop_out_interval"],
                    timeouts["noop_out_timeout"],
                    timeouts["replacement_timeout"],
                    timeouts["polling_interval"],
                ),
                int(heartbeat_threshold),
                "san_client_replacement_timeout, san_client_noop_out_interval/timeout and san_client_polling_interval",
                "Raise ocfs2_cluster_heartbeat_threshold to at least {needed}, or lower the iSCSI timeouts",
            )
        except StorageError as exc:
            raise SanError(exc.msg + ". Nothing was changed on any host") from exc
    return mine


def duplicate_initiators(names):
    """``names``: {host: initiator name}; the message refusing two hosts with one name, or ''."""
    by_name = {}
    for host, name in sorted(names.items()):
        if name and not name.startswith("("):
            by_name.setdefault(name, []).append(host)
    clashes = {n: h for n, h in by_name.items() if len(h) > 1}
    if not clashes:
        return ""
    words = "; ".join(f"{' and '.join(h)} share {n}" for n, h in sorted(clashes.items()))
    keep = sorted(clashes.items())[0][1]
    return (
        f"{words}: iSCSI initiator names must be unique (cloned hosts keep their source's), or the target mixes up "
        f"their sessions. Nothing was logged in anywhere. Give {', '.join(keep[1:])} its own: set "
        "san_client_initiator_name in its host_vars (iscsi-iname prints a new one), or delete "
        "/etc/iscsi/initiatorname.iscsi there so the role generates one; then allow the new name on the target"
    )
