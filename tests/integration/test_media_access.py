"""Who may connect to the media share: SMB clients at addresses in and outside its hosts allow.

The private Samba of test_media_server (its samba_lab fixture: smb.conf, state and port 4445 of
its own) also listens on a bridge of this test (flxsmb0, 10.254.0.1/24). Two clients live in
network namespaces on that bridge: client1 (10.254.0.21), a host of the media storage that uses
the share, and client2 (10.254.0.22), which is none. smbclient runs inside each namespace, so
smbd sees the client's own address. The role finds client1's address in the inventory (its
ansible_host) through the media storage declared there; client2 is refused until the declaration
lists it too and the role runs again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import test_media_server
from test_media_server import PLAY, PORT, SHARE, USER, _recap, _start_smbd

samba_lab = test_media_server.samba_lab  # the private Samba of test_media_server, a fixture here too

BRIDGE = "flxsmb0"
SERVER = "10.254.0.1"
CLIENTS = {"client1": "10.254.0.21", "client2": "10.254.0.22"}


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def bridge():
    if os.path.exists(f"/sys/class/net/{BRIDGE}") or any(os.path.exists(f"/run/netns/flx{name}") for name in CLIENTS):
        pytest.fail(f"an earlier run left {BRIDGE} or its namespaces: delete them (ip link delete / ip netns delete)")
    _ip("link", "add", BRIDGE, "type", "bridge")
    try:
        _ip("addr", "add", f"{SERVER}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        for index, (name, address) in enumerate(CLIENTS.items(), 1):
            _ip("netns", "add", f"flx{name}")
            _ip("link", "add", f"flxsmbv{index}", "type", "veth", "peer", "name", "eth0", "netns", f"flx{name}")
            _ip("link", "set", f"flxsmbv{index}", "master", BRIDGE, "up")
            _ip("-n", f"flx{name}", "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", f"flx{name}", "link", "set", "eth0", "up")
            _ip("-n", f"flx{name}", "link", "set", "lo", "up")
        yield
    finally:
        for name in CLIENTS:
            _ip("netns", "delete", f"flx{name}", check=False)
        _ip("link", "delete", BRIDGE, check=False)


def _smbclient(name, password):
    env = {k: v for k, v in os.environ.items() if k not in ("PASSWD", "PASSWD_FD")}
    env.update(LC_ALL="C", PASSWD=password)
    cmd = ["ip", "netns", "exec", f"flx{name}", "smbclient", f"//{SERVER}/{SHARE}", "-p", str(PORT), "-U", USER]
    proc = subprocess.run([*cmd, "-m", "SMB3", "-c", "ls"], env=env, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr


def _inventory(path, hosts):
    storage = {"name": "cifs", "server": SERVER, "share": SHARE, "username": USER, "password": "unused", "hosts": hosts}
    inventory = {
        "all": {
            "hosts": {
                # the server: its ansible_host is its address on the bridge (the local connection ignores it)
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                    "ansible_host": SERVER,
                    "flexvdi_media_storages": [storage],
                },
                **{name: {"ansible_host": address} for name, address in CLIENTS.items()},
            }
        }
    }
    path.write_text(json.dumps(inventory))
    return path


def _reload(lab):
    """smbd rereads smb.conf (the role restarts it when it manages the service; this test runs its own)."""
    lab["smbd"].send_signal(signal.SIGHUP)
    time.sleep(2)


def _served(run_module, lab):
    info = run_module(
        "flexvdi.storage.storage_info",
        {"samba_config": str(lab["config"]), "registry": str(lab["base"] / "storage.json"), "probe": False},
    )
    assert not info.get("failed"), info
    return info["media_shares"]


def test_hosts_allow_lets_the_storages_hosts_in_and_keeps_others_out(run_playbook, run_module, samba_lab, bridge):
    lab = samba_lab
    lab["vars"]["media_server_interfaces"] = ["127.0.0.1", SERVER]
    inventory = _inventory(lab["base"] / "inventory.json", ["client1"])

    checked = run_playbook(PLAY, extra_vars=lab["vars"], check=True, inventory=inventory)
    assert checked.rc == 0 and not lab["config"].exists(), checked.stdout[-3000:]
    first = run_playbook(PLAY, extra_vars=lab["vars"], inventory=inventory)
    assert first.rc == 0, first.stdout[-3000:]
    assert "WARNING: share [media]" not in first.stdout
    text = lab["config"].read_text()
    assert f"hosts allow = 127.0.0.1 ::1 {CLIENTS['client1']} {SERVER}\n" in text, text
    assert "hosts deny = ALL\n" in text and "server min protocol = SMB3" in text
    again = run_playbook(PLAY, extra_vars=lab["vars"], inventory=inventory)
    assert _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
    assert _served(run_module, lab) == [
        {
            "share": SHARE,
            "path": str(lab["share_path"]),
            "hosts_allow": ["127.0.0.1", "::1", CLIENTS["client1"], SERVER],
        }
    ]

    _start_smbd(lab)
    rc, out = _smbclient("client1", lab["password"])
    assert rc == 0, out
    rc, out = _smbclient("client2", lab["password"])
    assert rc != 0 and "NT_STATUS_ACCESS_DENIED" in out, out
    # this host itself always may (its own media storage, the credentials check)
    local = subprocess.run(
        ["smbclient", f"//127.0.0.1/{SHARE}", "-p", str(PORT), "-U", USER, "-m", "SMB3", "-c", "ls"],
        env=dict(os.environ, LC_ALL="C", PASSWD=lab["password"]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert local.returncode == 0, local.stdout + local.stderr

    # client2 added to the media storage's hosts: let in after the next run of the role.
    inventory = _inventory(lab["base"] / "inventory.json", ["client1", "client2"])
    added = run_playbook(PLAY, extra_vars=lab["vars"], inventory=inventory)
    assert added.rc == 0 and _recap(added.stdout)["changed"] > 0, added.stdout[-3000:]
    _reload(lab)
    rc, out = _smbclient("client2", lab["password"])
    assert rc == 0, out

    # media_server_hosts_allow given: it wins.
    extra = dict(lab["vars"], media_server_hosts_allow=["10.254.0.22/32"])
    narrowed = run_playbook(PLAY, extra_vars=extra, inventory=inventory)
    assert narrowed.rc == 0, narrowed.stdout[-3000:]
    _reload(lab)
    assert _smbclient("client2", lab["password"])[0] == 0
    rc, out = _smbclient("client1", lab["password"])
    assert rc != 0 and "NT_STATUS_ACCESS_DENIED" in out, out

    # Bad input: refused, naming the option, nothing changed.
    before = lab["config"].read_bytes()
    for bad, words in (
        (["*", "10.254.0.21"], "media_server_hosts_allow gives '*' (every address) together with 10.254.0.21"),
        (["client1"], "media_server_hosts_allow holds 'client1', not an address or a network"),
        (["10.254.0.*"], "media_server_hosts_allow holds '10.254.0.*'"),
    ):
        failed = run_playbook(PLAY, extra_vars=dict(lab["vars"], media_server_hosts_allow=bad), inventory=inventory)
        assert failed.rc != 0 and words in failed.stdout, failed.stdout[-3000:]
        assert _recap(failed.stdout)["changed"] == 0
        assert lab["config"].read_bytes() == before

    # '*' alone: open, knowingly, and said so.
    opened = run_playbook(PLAY, extra_vars=dict(lab["vars"], media_server_hosts_allow=["*"]), inventory=inventory)
    assert opened.rc == 0, opened.stdout[-3000:]
    assert (
        "WARNING: share [media] of localhost is open to every address" in opened.stdout
        and "media_server_hosts_allow is '*'" in opened.stdout
    )
    assert "hosts allow" not in lab["config"].read_text()
    _reload(lab)
    assert _smbclient("client1", lab["password"])[0] == 0


def test_a_share_no_media_storage_uses_stays_open_with_a_warning(run_playbook, run_module, samba_lab):
    lab = samba_lab
    done = run_playbook(PLAY, extra_vars=lab["vars"])
    assert done.rc == 0, done.stdout[-3000:]
    assert "WARNING: share [media] of localhost is open to every address" in done.stdout
    assert "no media storage of the inventory (flexvdi_media_storages) uses share media" in done.stdout
    assert "hosts allow" not in lab["config"].read_text()
    assert _served(run_module, lab) == [{"share": SHARE, "path": str(lab["share_path"]), "hosts_allow": ["*"]}]
