"""flexvdi.storage.san_client on this host, with the real iscsiadm and node records in /etc/iscsi.

This machine's kernel has no iSCSI initiator (iscsi_tcp), no LIO and no dm-multipath, so no session
can be made here: these tests prove what does not need one (bad input changes nothing, a failed
attach leaves no node record and answers within 30 s, check mode, absent deleting records, the CHAP
secret never in Ansible's output). Sessions, maps and failover are proven in the lab.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time

import pytest

pytestmark = pytest.mark.skipif(shutil.which("iscsiadm") is None, reason="open-iscsi is not installed")

SECRET = "Int3gr4tion-" + secrets.token_hex(4)


@pytest.fixture
def iqn():
    name = "iqn.2026-12.test.flexvdi:" + secrets.token_hex(4)
    yield name
    subprocess.run(["iscsiadm", "-m", "node", "-o", "delete", "-T", name], capture_output=True, check=False)


def nodes(iqn):
    base = f"/etc/iscsi/nodes/{iqn}"
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


def args(tmp_paths, target_iqn, **over):
    target = {
        "name": "array1",
        "iqn": target_iqn,
        # A closed port on this host: no target answers (with an initiator the login is refused at once).
        "portals": [{"address": "127.0.0.1", "port": 9}],
        "chap_username": "flexvdi",
        "chap_password": SECRET,
        "luns": ["36001405d2b5c4e1f8a7b3c9d0e1f2a3b"],
    }
    target.update(over)
    return {"targets": [target], "registry": tmp_paths.registry, "manage_multipath": False, "services": []}


def test_check_mode_plans_and_writes_nothing(run_module, tmp_paths, iqn):
    result = run_module("flexvdi.storage.san_client", args(tmp_paths, iqn), check=True, diff=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"]
    assert any("create the node record of %s at 127.0.0.1:9" % iqn in a for a in result["actions"])
    assert any("log in to %s" % iqn in a for a in result["actions"])
    assert nodes(iqn) == [] and not os.path.exists(tmp_paths.registry)
    assert SECRET not in str(result)


def test_unreachable_portal_fails_in_time_and_leaves_no_record(run_module, tmp_paths, iqn):
    start = time.monotonic()
    result = run_module("flexvdi.storage.san_client", args(tmp_paths, iqn), diff=True)
    elapsed = time.monotonic() - start
    assert result.get("failed")
    msg = result["msg"]
    assert "127.0.0.1:9" in msg and ("fix portals" in msg or "iSCSI initiator" in msg), msg
    assert SECRET not in str(result)
    assert nodes(iqn) == [], "a failed attach left a node record"
    assert not os.path.exists(tmp_paths.registry)
    # the module's own bound is 30 s; ansible-playbook's start-up on a loaded 2-core machine comes on top
    assert elapsed < 60, elapsed


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"iqn": "IQN.2026-12.test:x"}, "fix iqn"),
        ({"chap_password": "short"}, "fix chap_password"),
        ({"portals": [{"address": "127.0.0.1", "port": 70000}]}, "fix portals"),
        ({"portals": [{"address": "no-such-portal.invalid"}]}, "does not resolve"),
        ({"luns": ["/dev/sdb"]}, "fix luns"),
    ],
)
def test_bad_input_names_the_option_and_changes_nothing(run_module, tmp_paths, iqn, over, words):
    result = run_module("flexvdi.storage.san_client", args(tmp_paths, iqn, **over))
    assert result.get("failed") and words in result["msg"], result.get("msg")
    assert not result.get("changed")
    assert nodes(iqn) == [] and not os.path.exists(tmp_paths.registry)


def test_absent_deletes_the_records_then_changes_nothing(run_module, tmp_paths, iqn):
    for portal in ("127.0.0.1:9", "127.0.0.2:9"):
        subprocess.run(
            ["iscsiadm", "-m", "node", "-o", "new", "-T", iqn, "-p", portal], check=True, capture_output=True
        )
    assert nodes(iqn) == ["127.0.0.1,9", "127.0.0.2,9"]
    gone = args(tmp_paths, iqn, state="absent")
    check = run_module("flexvdi.storage.san_client", gone, check=True)
    assert check["changed"] and len(nodes(iqn)) == 2
    result = run_module("flexvdi.storage.san_client", gone)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] and nodes(iqn) == []
    again = run_module("flexvdi.storage.san_client", gone)
    assert not again.get("failed") and not again["changed"], again.get("actions")


ROLE_PLAY = """
- hosts: vdi_hosts
  gather_facts: false
  roles:
    - role: flexvdi.storage.san_client
      san_client_packages: []
"""


def test_role_refuses_two_hosts_with_one_initiator_name_before_any_login(run_playbook, tmp_path, iqn):
    """Two inventory hosts that are this one (connection local) share its initiator name, as clones do."""
    import json
    import sys

    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    target = {"name": "array1", "iqn": iqn, "portals": [{"address": "127.0.0.1", "port": 9}],
              "hosts": ["node1", "node2"], "chap_username": "flexvdi", "chap_password": SECRET}  # fmt: skip
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"children": {"vdi_hosts": {"hosts": {"node1": host, "node2": host}}},
                                             "vars": {"flexvdi_san_targets": [target]}}}))  # fmt: skip
    result = run_playbook(ROLE_PLAY, inventory=inventory, verbosity=3)
    out = result.stdout + result.stderr
    assert result.rc != 0
    assert "node1 and node2 share" in out and "san_client_initiator_name" in out
    assert "TASK [flexvdi.storage.san_client : Converge" not in out  # the play stopped before it
    assert SECRET not in out
    assert nodes(iqn) == []
