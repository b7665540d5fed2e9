"""media_storage for real: credential checks against a real smbd, local bind mounts, no leaked secret.

The SMB server runs in a network namespace of this test (10.251.77.2), so it is not "this
host" and the module takes the CIFS path: checks the share with smbclient, writes the
credentials file, and tries the kernel mount, which this host's kernel cannot do (no cifs
module): that proves the rollback; the mount itself is proven in the lab's VMs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest
from _state import fails_cleanly, mounts, registry, snapshot, three_runs

MS = "flexvdi.storage.media_storage"
NS, HOST_IF, NS_IF = "fvt-smb", "fvt-smb-h", "fvt-smb-n"
HOST_IP, SERVER = "10.251.77.1", "10.251.77.2"
PASSWORD = "Right-Pass-7c1e"
WRONG = "Wrong-Pass-0000"


def _sh(*argv, check=True, **kwargs):
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, **kwargs)


def _smb_conf(base, share_dir, interfaces, port=445):
    private = os.path.join(base, "private")
    os.makedirs(private, exist_ok=True)
    conf = os.path.join(base, "smb.conf")
    with open(conf, "w") as handle:
        handle.write(
            "[global]\n"
            f"  passdb backend = tdbsam:{private}/passdb.tdb\n"
            f"  private dir = {private}\n  lock directory = {base}/lock\n  state directory = {base}/state\n"
            f"  cache directory = {base}/cache\n  pid directory = {base}/pid\n  ncalrpc dir = {base}/ncalrpc\n"
            f"  interfaces = {interfaces}\n  bind interfaces only = yes\n  smb ports = {port}\n"
            "  disable netbios = yes\n  server min protocol = SMB2_02\n  log level = 1\n"
            f"  log file = {base}/log.%m\n\n"
            f"[media]\n  path = {share_dir}\n  read only = no\n  valid users = root\n"
        )
    for sub in ("lock", "state", "cache", "pid", "ncalrpc"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    return conf


@pytest.fixture(scope="module")
def smb_server(tmp_path_factory):
    """A real smbd in a network namespace, user root with PASSWORD, share 'media'."""
    base = str(tmp_path_factory.mktemp("smbd"))
    share_dir = os.path.join(base, "share")
    os.makedirs(share_dir)
    with open(os.path.join(share_dir, "debian-12.iso"), "wb") as handle:
        handle.truncate(1 << 20)
    conf = _smb_conf(base, share_dir, NS_IF)
    _sh("ip", "netns", "del", NS, check=False)
    _sh("ip", "link", "del", HOST_IF, check=False)
    _sh("ip", "netns", "add", NS)
    _sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF, "netns", NS)
    _sh("ip", "addr", "add", HOST_IP + "/24", "dev", HOST_IF)
    _sh("ip", "link", "set", HOST_IF, "up")
    _sh("ip", "-n", NS, "addr", "add", SERVER + "/24", "dev", NS_IF)
    _sh("ip", "-n", NS, "link", "set", NS_IF, "up")
    _sh("ip", "-n", NS, "link", "set", "lo", "up")
    _sh("smbpasswd", "-c", conf, "-s", "-a", "root", input=f"{PASSWORD}\n{PASSWORD}\n")
    smbd = subprocess.Popen(
        ["ip", "netns", "exec", NS, "smbd", "-F", "--no-process-group", "-s", conf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # smbd signals its whole process group when it stops: keep pytest out of it.
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((SERVER, 445), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or smbd.poll() is not None:
                    pytest.fail("smbd did not start in the namespace")
                time.sleep(0.2)
        yield {"conf": conf, "share_dir": share_dir}
    finally:
        smbd.terminate()
        try:
            smbd.wait(10)
        except subprocess.TimeoutExpired:
            smbd.kill()
        _sh("ip", "netns", "pids", NS, check=False)
        for pid in _sh("ip", "netns", "pids", NS, check=False).stdout.split():
            _sh("kill", "-9", pid, check=False)
        _sh("ip", "link", "del", HOST_IF, check=False)
        _sh("ip", "netns", "del", NS, check=False)


@pytest.fixture
def media_args(tmp_paths):
    return {
        "name": "cifs",
        "server": SERVER,
        "share": "media",
        "username": "root",
        "password": PASSWORD,
        "registry": tmp_paths["registry"],
        "fstab": tmp_paths["fstab"],
        "mount_point": os.path.join(tmp_paths["root"], "media"),
    }


def _credentials_dir(tmp_paths):
    return os.path.join(os.path.dirname(tmp_paths["registry"]), "credentials")


def test_right_password_is_accepted_in_check_mode(run_module, tmp_paths, smb_server, media_args):
    before = snapshot(tmp_paths)
    result = run_module(MS, media_args, check=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"]
    assert any(a.startswith("write credentials file") for a in result["actions"])
    assert f"mount //{SERVER}/media on {media_args['mount_point']} (cifs)" in result["actions"]
    assert snapshot(tmp_paths) == before
    assert not os.path.exists(_credentials_dir(tmp_paths))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password": WRONG}, "the server refused username root with this password: fix username or password"),
        ({"share": "nosuch"}, f"server {SERVER} has no share nosuch: fix share"),
        ({"port": 4446}, f"server {SERVER} refuses connections on port 4446"),
        ({"server": "10.251.77.9"}, "10.251.77.9"),
    ],
)
def test_bad_server_or_credentials_fail_fast_and_leave_nothing(
    run_module, tmp_paths, smb_server, media_args, change, message
):
    started = time.monotonic()
    result = fails_cleanly(run_module, MS, dict(media_args, **change), tmp_paths, message)
    assert time.monotonic() - started < 25, "a bad server must be an error in seconds"
    assert "Nothing was written or mounted" in result["msg"]
    assert not os.path.exists(_credentials_dir(tmp_paths))
    assert not os.path.exists(media_args["mount_point"])


def test_kernel_mount_failure_is_rolled_back(run_module, tmp_paths, smb_server, media_args):
    """This kernel has no cifs: the mount fails after the credentials file was written; all is undone."""
    if "cifs" in open("/proc/filesystems").read():
        pytest.skip("this kernel mounts CIFS: the lab proves the rollback elsewhere")
    result = fails_cleanly(run_module, MS, media_args, tmp_paths, f"mount //{SERVER}/media on")
    assert "mount error(19): No such device" in result["msg"]
    assert "undone:" in result["msg"]
    assert "write credentials file" in result["msg"]
    assert not os.listdir(_credentials_dir(tmp_paths)) if os.path.exists(_credentials_dir(tmp_paths)) else True
    assert not os.path.exists(os.path.join(_credentials_dir(tmp_paths), "cifs.cred"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vers": "1.0"}, "vers 1.0 is SMB1, which is refused"),
        ({"vers": "9"}, "is not an SMB dialect"),
        ({"server": "bad host!"}, "is neither an IP address nor a valid hostname: fix server"),
        ({"share": "a/b"}, "is not a share name"),
        ({"name": "../x"}, "is not a valid name"),
    ],
)
def test_bad_input(run_module, tmp_paths, media_args, change, message):
    fails_cleanly(run_module, MS, dict(media_args, **change), tmp_paths, message)


def test_password_never_leaks(run_playbook, tmp_paths, smb_server, media_args):
    """-vvvv output of a check run and a failed run, fstab and registry: no password anywhere."""
    play = [
        {
            "name": "media",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {"name": "check", "flexvdi.storage.media_storage": media_args, "check_mode": True},
                {
                    "name": "wrong password",
                    "flexvdi.storage.media_storage": dict(media_args, password=WRONG),
                    "ignore_errors": True,
                },
                {"name": "for real", "flexvdi.storage.media_storage": media_args, "ignore_errors": True},
            ],
        }
    ]
    result = run_playbook(json.dumps(play), verbosity=4)
    output = result.stdout + result.stderr
    assert "<localhost> EXEC" in output, "not a -vvvv run"
    assert "the server refused username root" in output, output[-3000:]
    for secret in (PASSWORD, WRONG):
        assert secret not in output
        for path in (tmp_paths["fstab"], tmp_paths["registry"]):
            if os.path.exists(path):
                assert secret not in open(path).read()


def test_local_server_is_bind_mounted(run_module, tmp_paths, media_args, qemu_user):
    share_dir = os.path.join(tmp_paths["root"], "share")
    os.makedirs(os.path.join(share_dir, "sub"))
    for name in ("b.iso", "sub/a.ISO", "export.fvm", "readme.txt", ".hidden.iso"):
        with open(os.path.join(share_dir, name), "wb") as handle:
            handle.truncate(4096)
    conf = _smb_conf(os.path.join(tmp_paths["root"], "samba"), share_dir, "127.0.0.1")
    args = dict(media_args, server="127.0.0.1", samba_config=conf, password=None)
    real = three_runs(run_module, MS, args, tmp_paths)
    media = real["media_storage"]
    assert (media["transport"], media["status"], media["mounted"]) == ("local", "online", True)
    assert [(f["name"], f["type"]) for f in media["files"]] == [
        ("b.iso", "iso"),
        ("export.fvm", "fvm"),
        ("sub/a.ISO", "iso"),
    ]
    assert media["last_operation"]["message"] == f"bind-mounted {share_dir} on {args['mount_point']}"
    assert mounts()[args["mount_point"]] != "cifs"
    assert registry(tmp_paths)["media_storages"]["cifs"]["transport"] == "local"
    assert not os.path.exists(_credentials_dir(tmp_paths)), "a local share needs no credentials"

    three_runs(
        run_module, MS, {"name": "cifs", "state": "absent", **{k: args[k] for k in ("registry", "fstab")}}, tmp_paths
    )
    assert args["mount_point"] not in mounts()
    assert registry(tmp_paths)["media_storages"] == {}


def test_already_mounted_share_is_registered_once(run_module, tmp_paths, media_args):
    """A share mounted (and in fstab) before the collection knew it: one registration, then no change."""
    share_dir = os.path.join(tmp_paths["root"], "share")
    os.makedirs(share_dir)
    conf = _smb_conf(os.path.join(tmp_paths["root"], "samba"), share_dir, "127.0.0.1")
    mount_point = media_args["mount_point"]
    os.makedirs(mount_point)
    subprocess.run(["mount", "--bind", share_dir, mount_point], check=True)
    with open(tmp_paths["fstab"], "a") as handle:
        handle.write(f"{share_dir}\t{mount_point}\tnone\tbind,rw,nofail\t0\t0\n")
    try:
        args = dict(media_args, server="127.0.0.1", samba_config=conf, password=None)
        real = three_runs(run_module, MS, args, tmp_paths)
        assert real["actions"] == [f"update {tmp_paths['registry']}"]
        operation = registry(tmp_paths)["media_storages"]["cifs"]["last_operation"]
        assert operation["message"] == f"registered {share_dir}, already mounted on {mount_point}"
    finally:
        subprocess.run(["umount", mount_point], check=False)


def test_host_no_longer_listed_unmounts_and_unregisters(run_module, tmp_paths, media_args):
    """hosts without this host: unmounted, fstab line and registry entry gone, the share's files kept."""
    share_dir = os.path.join(tmp_paths["root"], "share")
    os.makedirs(share_dir)
    with open(os.path.join(share_dir, "keep.iso"), "wb") as handle:
        handle.truncate(1024)
    conf = _smb_conf(os.path.join(tmp_paths["root"], "samba"), share_dir, "127.0.0.1")
    args = dict(media_args, server="127.0.0.1", samba_config=conf, password=None)
    three_runs(run_module, MS, args, tmp_paths)
    assert args["mount_point"] in mounts()
    dropped = three_runs(run_module, MS, dict(args, hosts=[]), tmp_paths)
    assert dropped["media_storage"]["status"] == "absent"
    assert f"unmount {args['mount_point']} (media storage cifs)" in dropped["actions"]
    assert args["mount_point"] not in mounts()
    assert registry(tmp_paths)["media_storages"] == {}
    assert args["mount_point"] not in open(tmp_paths["fstab"]).read()
    assert os.path.getsize(os.path.join(share_dir, "keep.iso")) == 1024
