"""What makes a run look like one slice of a sliced AWX job (the awx_job_slice filter and the
storage modules' refusal share it)."""

from __future__ import annotations

import pytest

from ansible_collections.flexvdi.storage.plugins.filter.awx_job_slice import FilterModule

awx_job_slice = FilterModule().filters()["awx_job_slice"]

SLICE = {
    "awx_job_id": 42,
    "awx_job_launch_type": "workflow",
    "awx_job_template_name": "flexvdi storage",
    "awx_workflow_job_id": 41,
    "awx_workflow_job_name": "flexvdi storage",
}


def test_a_job_launched_by_the_workflow_of_its_own_template_is_a_slice():
    assert awx_job_slice(SLICE) == "launched by workflow job 41 named 'flexvdi storage', as its job template"


def test_tower_variables_say_the_same():
    tower = {key.replace("awx_", "tower_"): value for key, value in SLICE.items()}
    assert awx_job_slice(tower).startswith("launched by workflow job 41")


@pytest.mark.parametrize(
    "changed",
    [
        {"awx_workflow_job_name": "nightly"},  # a workflow of another name
        {"awx_job_launch_type": "manual"},  # launched by hand
        {"awx_job_launch_type": "scheduled"},
        {"awx_job_template_name": ""},
        {"flexvdi_storage_not_sliced": True},  # said not to be a slice
    ],
)
def test_other_runs_are_not_slices(changed):
    assert awx_job_slice({**SLICE, **changed}) == ""


def test_a_run_outside_awx_is_not_a_slice():
    assert awx_job_slice({"inventory_hostname": "node1"}) == ""
