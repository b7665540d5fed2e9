"""Proof that the integration fixtures do what tests rely on (see conftest.py).

Small and fast on purpose; it may go once the modules' own integration tests exist.
"""

import os
import pwd
from pathlib import Path

import pytest


def test_run_module_ping(run_module):
    result = run_module("ansible.builtin.ping", {"data": "pong-harness"})
    assert result.get("failed") is not True, result
    assert result["ping"] == "pong-harness"


def test_run_module_check_mode_changes_nothing(run_module, tmp_path):
    target = tmp_path / "made-by-ansible"
    args = {"path": target, "state": "directory", "mode": "0750"}

    checked = run_module("ansible.builtin.file", args, check=True, diff=True)
    assert checked["changed"] is True, checked
    assert not target.exists(), "check mode must not create the directory"
    assert checked["diff"]["before"]["state"] == "absent"
    assert checked["diff"]["after"]["state"] == "directory"

    real = run_module("ansible.builtin.file", args)
    assert real["changed"] is True, real
    assert target.is_dir()
    assert "diff" not in real, "diff mode is off unless asked"

    again = run_module("ansible.builtin.file", args)
    assert again["changed"] is False, again


def test_run_module_reports_failure_without_raising(run_module, tmp_path):
    result = run_module("ansible.builtin.command", {"argv": ["false"]})
    assert result["failed"] is True
    assert result["rc"] == 1

    unknown = run_module("flexvdi.storage.no_such_module", {})
    assert unknown["failed"] is True
    assert "no_such_module" in unknown["msg"]


def test_run_module_host_is_localhost(run_module):
    result = run_module("ansible.builtin.debug", {"msg": "{{ inventory_hostname }}"})
    assert result["msg"] == "localhost"


def test_run_playbook_text_check_and_extra_vars(run_playbook, tmp_path):
    target = tmp_path / "from-playbook"
    playbook = """
- name: Harness play
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Make a directory
      ansible.builtin.file:
        path: "{{ harness_target }}"
        state: directory
        mode: "0755"
"""
    checked = run_playbook(playbook, extra_vars={"harness_target": target}, check=True)
    assert checked.rc == 0, checked.stderr
    assert "changed=1" in checked.stdout
    assert not target.exists()

    real = run_playbook(playbook, extra_vars={"harness_target": target}, verbosity=1)
    assert real.rc == 0, real.stderr
    assert target.is_dir()


def test_run_playbook_failure_is_an_rc(run_playbook):
    result = run_playbook("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.fail:\n")
    assert result.rc != 0


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs", "none"])
def test_loopdev_makes_the_filesystem_and_cleans_up(loopdev, tmp_paths, fstype):
    device = loopdev(fstype, size_mb=300)
    assert Path(device).is_block_device()
    probe = os.popen(f"blkid -p -o value -s TYPE {device}").read().strip()
    assert probe == ("" if fstype == "none" else fstype)
    if fstype != "none":
        mount_point = os.path.join(tmp_paths.root, "mnt")
        os.mkdir(mount_point)
        assert os.system(f"mount {device} {mount_point}") == 0
        assert os.path.ismount(mount_point)
        # left mounted on purpose: the fixtures' teardown must unmount it


def test_tmp_paths(tmp_paths):
    assert not os.path.exists(tmp_paths["registry"])
    assert os.path.isdir(os.path.dirname(tmp_paths.registry))
    assert os.path.isfile(tmp_paths.fstab)
    assert os.path.isdir(tmp_paths.root)
    assert os.listdir(tmp_paths.root) == []


def test_qemu_user(qemu_user):
    assert qemu_user in ("libvirt-qemu", "qemu")
    assert pwd.getpwnam(qemu_user).pw_shell.endswith("nologin")
