"""The converge phase's controller side and its one wait: why a first host did not create, and the
bounded wait that only the free strategy gets."""

from __future__ import annotations

import pytest
from _fakes import FakeModule

from ansible_collections.flexvdi.storage.plugins.action.storage import ActionModule, _ocfs2_here
from ansible_collections.flexvdi.storage.plugins.module_utils import _host
from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError
from ansible_collections.flexvdi.storage.plugins.module_utils._host import Host
from ansible_collections.flexvdi.storage.plugins.module_utils._plan import Plan

STORAGES = [{"name": "S", "hosts": ["n2", "n1"], "volumes": [{"name": "G", "type": "gluster", "brick": "/b"}]}]
ARGS = {"image_storages": STORAGES, "created_by": "created"}


def _vars(all_hosts, active, batch, created=None):
    hostvars = {h: {} for h in all_hosts}
    if created is not None:
        hostvars["n2"]["created"] = created
    return {
        "ansible_play_hosts_all": all_hosts,
        "ansible_play_hosts": active,
        "ansible_play_batch": batch,
        "hostvars": hostvars,
    }


@pytest.mark.parametrize(
    ("task_vars", "why"),
    [
        (_vars(["n1"], ["n1"], ["n1"]), "n2 is not in this run (--limit, or a job slice)"),
        (_vars(["n1", "n2"], ["n1"], ["n1"]), "n2 failed or was unreachable earlier in this run"),
        (_vars(["n1", "n2"], ["n1", "n2"], ["n1"]), "n2 is in a later batch of this play (serial)"),
        (_vars(["n1", "n2"], ["n1", "n2"], ["n1", "n2"], created={"objects": []}), ""),
        (
            _vars(
                ["n1", "n2"],
                ["n1", "n2"],
                ["n1", "n2"],
                {"objects": [{"image_storage": "S", "failed": True, "msg": "boom"}]},
            ),
            "its create phase failed: boom",
        ),
    ],
)
def test_the_converge_phase_is_told_why_the_first_host_did_not_create(task_vars, why):
    assert ActionModule._creators(ARGS, STORAGES, "n1", task_vars) == {"S": why}


def _peer_host(stage, wait_timeout=0, creators=None, check_mode=False):
    module = FakeModule({"inventory_hostname": "n1", "registry": "/nonexistent/r.json"}, {})
    module.check_mode = check_mode
    host = Host(module)
    host.stage, host.wait_timeout, host.creators = stage, wait_timeout, creators or {}
    return host


def test_the_converge_phase_fails_at_once_naming_the_first_host_and_why():
    with pytest.raises(
        StorageError, match="n2, the first host of image storage S, is to create .*: n2 is not in this run"
    ):
        _peer_host("converge", creators={"S": "n2 is not in this run"}).await_peer(
            Plan(), "S", "n2", "create G", 300, lambda: "missing"
        )


def test_check_mode_describes_the_step_when_the_create_phase_planned_it():
    plan = Plan()
    _peer_host("converge", check_mode=True, creators={"S": ""}).await_peer(plan, "S", "n2", "create G", 300, None)
    assert plan.descriptions() == ["n2 is to create G first (its create phase, in this run)"]


def test_only_the_free_strategy_waits_and_the_wait_is_bounded(monkeypatch):
    monkeypatch.setattr(_host, "POLL_INTERVAL", 0.01)
    answers = iter(["missing", "missing", None])
    plan = Plan()
    _peer_host("converge", wait_timeout=5, creators={"S": "n2 did not run its create phase"}).await_peer(
        plan, "S", "n2", "create G", 300, lambda: next(answers)
    )
    assert plan.descriptions() == ["wait up to 5 s for n2 to create G"]
    plan.actions[0].do()  # polls until ready
    plan = Plan()
    _peer_host("converge", wait_timeout=0.05, creators={"S": "x"}).await_peer(
        plan, "S", "n2", "create G", 300, lambda: "missing"
    )
    with pytest.raises(StorageError, match="waited 0.05 s for n2"):
        plan.actions[0].do()


@pytest.mark.parametrize(
    ("storage", "volume", "reports"),
    [
        ({"hosts": ["n1", "n2"]}, {}, True),
        ({"hosts": ["n2"]}, {}, False),
        ({"hosts": ["n1"], "state": "absent"}, {}, False),
        ({"hosts": ["n1"]}, {"state": "absent"}, False),
        ({}, {}, False),
    ],
)
def test_the_identify_phase_runs_only_on_a_host_of_a_present_ocfs2_volume(storage, volume, reports):
    # elsewhere the action plugin skips it without a module run, as the `when` of the role did
    assert _ocfs2_here(storage, dict(volume, type="ocfs2"), "n1") is reports
