"""What a playbook run executed on its hosts, read from the ansible.posix.json callback's output.

A module execution is a task (or a loop item) that ran something on a managed host: command,
copy, apt, service, any flexvdi module... Controller-only actions (set_fact, assert, debug,
include_*...) and skipped tasks and items are not executions.
"""

from __future__ import annotations

import json

# Run by ansible-playbook itself, never on a host.
CONTROLLER_ONLY = {
    "add_host",
    "assert",
    "debug",
    "fail",
    "group_by",
    "import_playbook",
    "import_role",
    "import_tasks",
    "include_role",
    "include_tasks",
    "include_vars",
    "meta",
    "pause",
    "set_fact",
    "set_stats",
    "validate_argument_spec",  # a role's argument_specs, checked by the controller
}

# Environment for run_playbook(env=...): results as one JSON document on stdout.
JSON_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}


def report(stdout: str) -> dict:
    start = stdout.find("{")
    assert start >= 0, f"no JSON in ansible-playbook's output: {stdout[-3000:]}"
    return json.loads(stdout[start:])


def executions(stdout: str) -> dict[str, list[str]]:
    """{host: names of the tasks that ran on it, once per execution (a loop's items each)}."""
    ran: dict[str, list[str]] = {}
    for play in report(stdout)["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"].partition(" : ")[2] or task["task"]["name"]  # without "role : "
            for host, result in task["hosts"].items():
                action = result.get("action", "").removeprefix("ansible.builtin.").removeprefix("ansible.legacy.")
                if action in CONTROLLER_ONLY or result.get("skipped"):
                    continue
                items = result.get("results")
                count = 1 if items is None else sum(1 for item in items if not item.get("skipped"))
                ran.setdefault(host, []).extend([name] * count)
    return ran


def changed(stdout: str) -> dict[str, int]:
    """{host: changed} of the play recap."""
    return {host: stats["changed"] for host, stats in report(stdout)["stats"].items()}
