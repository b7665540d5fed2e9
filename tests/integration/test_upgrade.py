"""An upgrade changes nothing: a host converged by release 0.1.0 re-converges with this checkout unchanged.

The host is declared once, in inventory variables, and driven only through the storage role
(hosts: localhost, roles: [flexvdi.storage.storage]), so the test holds for any rewrite of the
role that keeps its variables: an image storage with an external volume on an ext4 loop device
(src set: mounted, in fstab) and one that is a plain directory given to the qemu user; a direct
storage on a blank loop device (its udev rule); a media storage served by this host (Samba
configuration naming the share's directory: bind-mounted; a CIFS mount cannot run here, this
kernel has no cifs module). Release 0.1.0 (RELEASE) converges it from a copy built by `git
archive` and put first, and alone, on ANSIBLE_COLLECTIONS_PATH; then this checkout (through the
repository's ansible.cfg: .cache/collections) runs in check mode and for real. Both must report
changed=0 and leave registry, fstab, udev rules, the volumes' tree and the mounts (their
mountinfo lines, so a remount shows) byte for byte as the old release left them. Which copy
ran is read from Ansible itself: at -vv every task prints its file ("task path: ...").
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
RELEASE = "c4f9034"  # main at release 0.1.0
PLAYBOOK = "- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: flexvdi.storage.storage\n"


@pytest.fixture(scope="module")
def old_collection(tmp_path_factory):
    """A collections directory holding flexvdi.storage as of RELEASE (git archive), and nothing else."""
    top = tmp_path_factory.mktemp("release")
    target = top / "ansible_collections" / "flexvdi" / "storage"
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", RELEASE], capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.fail(f"git archive {RELEASE} failed: {archive.stderr.decode().strip()}", pytrace=False)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    assert (target / "roles" / "storage" / "tasks" / "main.yml").is_file()
    return top


def _recap(stdout):
    found = re.findall(r"^localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout, re.M)
    assert len(found) == 1, stdout[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, found[0])))


def _role_task_files(stdout):
    """The files of the storage role's tasks, as ansible-playbook -vv names them."""
    files = {path for path in re.findall(r"^task path: (.+):\d+$", stdout, re.M) if "/roles/storage/" in path}
    assert files, "no task of the storage role printed its path (not a -vv run?):\n" + stdout[-3000:]
    return files


def _smb_conf(base, share_dir):
    """A Samba configuration whose share `media` is share_dir (read, not served: no smbd runs)."""
    os.makedirs(os.path.join(base, "private"), exist_ok=True)
    conf = os.path.join(base, "smb.conf")
    with open(conf, "w") as handle:
        handle.write(
            "[global]\n"
            f"  private dir = {base}/private\n  lock directory = {base}\n  state directory = {base}\n"
            f"  cache directory = {base}\n  pid directory = {base}\n"
            "  interfaces = 127.0.0.1\n  bind interfaces only = yes\n  disable netbios = yes\n\n"
            f"[media]\n  path = {share_dir}\n  read only = no\n  valid users = root\n"
        )
    return conf


@pytest.fixture
def udev_rules_kept(udev):
    """Where this host runs udev, the rules the test's direct storage leaves in /etc/udev/rules.d go at teardown."""
    names = []
    yield names
    if udev.namespace is None:
        for name in names:
            Path(udev.rules_dir, f"90-flexvdi-direct-{name}.rules").unlink(missing_ok=True)
        subprocess.run(["udevadm", "control", "--reload"], capture_output=True, check=False)


class State:
    """Registry, fstab, udev rules, volumes' tree and mounts, as the playbook's mount namespace sees them."""

    def __init__(self, tmp_paths, udev):
        self.paths = tmp_paths
        self.base = str(Path(tmp_paths.root).parent)
        self.udev = udev
        pid = udev.namespace or "self"
        self.mountinfo = f"/proc/{pid}/mountinfo"
        self.view = f"/proc/{pid}/root" if udev.namespace else ""  # that namespace's mounts

    def mounts(self):
        """mount point -> its mountinfo line, for every mount under the test's directory."""
        with open(self.mountinfo, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        found = {}
        for line in lines:
            mount_point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split(" ")[4])
            if mount_point == self.base or mount_point.startswith(self.base + "/"):
                assert mount_point not in found, f"{mount_point} is mounted twice:\n" + "\n".join(lines)
                found[mount_point] = line
        return found

    def snapshot(self):
        def read(path):
            try:
                return Path(path).read_bytes()
            except FileNotFoundError:
                return None

        tree = []
        root = self.view + self.paths.root
        for top, dirs, files in os.walk(root):
            for name in sorted(dirs + files):
                full = os.path.join(top, name)
                st = os.lstat(full)
                tree.append((full[len(self.view) :], st.st_mode, st.st_uid, st.st_gid, st.st_size))
        rules = Path(self.udev.rules_dir)
        return {
            "registry": read(self.paths.registry),
            "fstab": read(self.paths.fstab),
            "udev_rules": {p.name: p.read_bytes() for p in sorted(rules.iterdir()) if p.is_file()},
            "tree": sorted(tree),
            "mounts": self.mounts(),
        }


def test_release_0_1_0_host_reconverges_unchanged(
    run_playbook, tmp_paths, loopdev, by_id, udev, udev_rules_kept, qemu_user, old_collection
):
    # loopdev comes before udev: udevd's mount namespace (where the playbooks mount) goes first.
    root = tmp_paths.root
    ext4 = loopdev("ext4", 64)
    disk = by_id(loopdev("none", 64))
    plain = os.path.join(root, "plain")
    os.mkdir(plain, 0o755)
    share = os.path.join(root, "share")
    os.makedirs(os.path.join(share, "iso"))
    Path(share, "iso", "debian-12.iso").write_bytes(b"\0" * 4096)
    direct = "up" + secrets.token_hex(4)
    udev_rules_kept.append(direct)
    loop_mp = os.path.join(root, "ext4")
    media_mp = os.path.join(root, "media")
    host_vars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "storage_registry": tmp_paths.registry,
        "storage_fstab": tmp_paths.fstab,
        "flexvdi_image_storages": [
            {
                "name": "Images",
                "hosts": ["localhost"],
                "root": os.path.join(root, "images"),
                "volumes": [
                    {"name": "Loop", "type": "external", "mount_point": loop_mp, "src": ext4, "owner_qemu": True},
                    {"name": "Plain", "type": "external", "mount_point": plain, "owner_qemu": True},
                ],
            }
        ],
        "flexvdi_media_storages": [
            {
                "name": "iso",
                "server": "127.0.0.1",
                "share": "media",
                "username": "root",
                "samba_config": _smb_conf(os.path.join(root, "samba"), share),
                "hosts": ["localhost"],
                "mount_point": media_mp,
            }
        ],
        "flexvdi_direct_storages": [{"name": direct, "host": "localhost", "device": disk}],
    }
    inventory = Path(tmp_paths.registry).parent / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": host_vars}}}))
    state = State(tmp_paths, udev)
    old_env = {"ANSIBLE_COLLECTIONS_PATH": str(old_collection)}

    old = run_playbook(PLAYBOOK, inventory=inventory, verbosity=2, namespace=udev.namespace, env=old_env)
    assert old.rc == 0, old.stdout[-3000:] + old.stderr[-2000:]
    assert all(f.startswith(str(old_collection) + "/") for f in _role_task_files(old.stdout)), "not the release ran"
    assert _recap(old.stdout)["changed"] >= 4, old.stdout[-3000:]
    converged = state.snapshot()
    # What the release made is what the rest compares against: make sure it is all there.
    assert set(converged["mounts"]) == {loop_mp, media_mp}, converged["mounts"]
    assert " - ext4 " + ext4 + " " in converged["mounts"][loop_mp]
    fstab = converged["fstab"].decode()
    assert re.search(rf"^{re.escape(ext4)}\s+{re.escape(loop_mp)}\s+ext4\s", fstab, re.M), fstab
    assert re.search(rf"^\S+\s+{re.escape(media_mp)}\s", fstab, re.M), fstab
    assert f"90-flexvdi-direct-{direct}.rules" in converged["udev_rules"]
    registered = json.loads(converged["registry"])
    assert sorted(registered["image_storages"]["Images"]["volumes"]) == ["Loop", "Plain"]
    assert list(registered["media_storages"]) == ["iso"]
    assert direct in registered["direct_storages"]

    for check in (True, False):
        new = run_playbook(PLAYBOOK, inventory=inventory, verbosity=2, namespace=udev.namespace, check=check)
        run = "check-mode run" if check else "run"
        assert new.rc == 0, f"{run}:\n" + new.stdout[-3000:] + new.stderr[-2000:]
        files = _role_task_files(new.stdout)
        assert all(os.path.realpath(f).startswith(str(REPO_ROOT) + "/") for f in files), files
        assert not any(f.startswith(str(old_collection)) for f in files), files
        assert _recap(new.stdout)["changed"] == 0, f"the {run} of this checkout changed something:\n" + new.stdout
        after = state.snapshot()
        for key in converged:
            assert after[key] == converged[key], f"the {run} of this checkout changed the {key}"
