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
    mount = f"mount //{SERVER}/media on {media_args['mount_point']} (cifs, credentials="
    assert any(a.startswith(mount) for a in result["actions"]), result["actions"]
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


# AWX blanks a job event's result over MAX_EVENT_RES (700,000 bytes).
MAX_EVENT_RES = 700_000


def test_ten_thousand_files_fit_in_an_awx_event(run_module, tmp_paths, media_args):
    """10,000 ISO images: every result stays far below AWX's limit; list_all_files lists them all."""
    share_dir = os.path.join(tmp_paths["root"], "share")
    for d in range(10):
        sub = os.path.join(share_dir, "release-%02d" % d)
        os.makedirs(sub)
        for i in range(1000):
            with open(os.path.join(sub, "debian-12.%04d-amd64-netinst.iso" % i), "wb") as handle:
                handle.truncate(i)
    conf = _smb_conf(os.path.join(tmp_paths["root"], "samba"), share_dir, "127.0.0.1")
    args = dict(media_args, server="127.0.0.1", samba_config=conf, password=None)
    paths = {k: args[k] for k in ("registry", "fstab")}
    try:
        created = run_module(MS, args)
        assert created.get("failed") is not True, created
        info_args = dict(paths, probe=False)
        for result, media in ((created, created["media_storage"]), *_info_media(run_module, info_args)):
            assert len(json.dumps(result)) < MAX_EVENT_RES // 10, len(json.dumps(result))
            assert (media["files_count"], media["files_truncated"], len(media["files"])) == (10_000, True, 100)
            assert media["files_size"] == 10 * sum(range(1000))
            assert media["files"][0]["name"] == "release-00/debian-12.0000-amd64-netinst.iso"
        full = run_module("flexvdi.storage.storage_info", dict(info_args, list_all_files=True))
        [media] = full["media_storages"]
        assert (len(media["files"]), media["files_truncated"]) == (10_000, False)
        assert len(json.dumps(full)) > MAX_EVENT_RES, "the summary is what keeps the default under the limit"
    finally:
        run_module(MS, {"name": "cifs", "state": "absent", **paths})
    assert args["mount_point"] not in mounts()


def _info_media(run_module, info_args):
    info = run_module("flexvdi.storage.storage_info", info_args)
    assert info.get("failed") is not True, info
    return [(info, info["media_storages"][0])]


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


# --- hardening ---------------------------------------------------------------------------------


def test_fresh_host_cifs_check_mode_and_real_run_agree(run_module, tmp_paths, smb_server, media_args):
    """No registry directory: check mode plans it once; the real run gets as far as the kernel."""
    registry_path = os.path.join(tmp_paths["root"], "etc", "flexvdi", "storage.json")
    args = dict(media_args, registry=registry_path)
    paths = dict(tmp_paths, registry=registry_path)
    before = snapshot(paths)
    checked = run_module(MS, args, check=True)
    assert not checked.get("failed"), checked.get("msg")
    creds_dir = os.path.join(os.path.dirname(registry_path), "credentials")
    assert checked["actions"][0] == f"create directory {creds_dir}"
    assert not any(a == f"create directory {os.path.dirname(registry_path)}" for a in checked["actions"])
    real = run_module(MS, args)
    if "cifs" in open("/proc/filesystems").read():
        assert real["actions"] == checked["actions"]
        return
    # This kernel cannot mount CIFS: the run must fail at the mount, not at a directory.
    assert real.get("failed")
    assert "File exists" not in real["msg"]
    assert f"mount //{SERVER}/media on" in real["msg"] and "undone:" in real["msg"]
    assert snapshot(paths) == before
    assert not os.path.exists(os.path.dirname(registry_path)), "the run's directories are undone"


@pytest.mark.parametrize("port", [0, 70000])
def test_port_out_of_range_refused_before_any_network_check(run_module, tmp_paths, media_args, port):
    started = time.monotonic()
    fails_cleanly(run_module, MS, dict(media_args, server="192.0.2.1", port=port), tmp_paths, "is not a TCP port")
    assert time.monotonic() - started < 15


def _local_args(tmp_paths, media_args):
    share_dir = os.path.join(tmp_paths["root"], "share")
    os.makedirs(share_dir, exist_ok=True)
    conf = _smb_conf(os.path.join(tmp_paths["root"], "samba"), share_dir, "127.0.0.1")
    return dict(media_args, server="127.0.0.1", samba_config=conf, password=None), share_dir


def test_cifs_to_local_removes_the_credentials_file(run_module, tmp_paths, media_args):
    """A storage registered over CIFS that is now served by this host keeps no password behind."""
    args, _share = _local_args(tmp_paths, media_args)
    creds = os.path.join(_credentials_dir(tmp_paths), "cifs.cred")
    os.makedirs(os.path.dirname(creds), mode=0o700)
    with open(creds, "w") as handle:
        handle.write("username=root\npassword=old\n")
    os.chmod(creds, 0o600)
    registered = {
        "schema_version": 1,
        "image_storages": {},
        "direct_storages": {},
        "media_storages": {
            "cifs": {
                "server": "192.0.2.9",
                "share": "media",
                "hosts": ["localhost"],
                "mount_point": args["mount_point"],
                "vers": "3.1.1",
                "port": 445,
                "read_only": False,
                "username": "root",
                "domain": None,
                "transport": "cifs",
                "local_path": None,
                "credentials": creds,
                "src": "//192.0.2.9/media",
                "kind": "network",
                "fstype": "cifs",
                "opts": f"credentials={creds}",
            }
        },
    }
    with open(tmp_paths["registry"], "w") as handle:
        json.dump(registered, handle)
    real = three_runs(run_module, MS, args, tmp_paths)
    assert f"remove credentials file {creds}" in real["actions"]
    assert not os.path.exists(creds)
    assert registry(tmp_paths)["media_storages"]["cifs"]["credentials"] is None


def test_removal_leaves_what_is_not_ours_mounted(run_module, tmp_paths, media_args):
    args, _share = _local_args(tmp_paths, media_args)
    three_runs(run_module, MS, args, tmp_paths)
    mount_point = args["mount_point"]
    subprocess.run(["umount", mount_point], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "someone-else", mount_point], check=True)
    try:
        removed = run_module(
            MS, {"name": "cifs", "state": "absent", "registry": args["registry"], "fstab": args["fstab"]}
        )
        assert removed["changed"] and not removed.get("failed"), removed.get("msg")
        assert not any(a.startswith("unmount") for a in removed["actions"])
        assert mounts().get(mount_point) == "tmpfs", "a mount that is not ours is left alone"
        assert registry(tmp_paths)["media_storages"] == {}
    finally:
        subprocess.run(["umount", mount_point], check=False)


def test_a_mount_that_is_not_what_was_asked_is_unmounted(tmp_paths):
    """mount_and_verify on the real kernel: a mount(8) that 'succeeds' with the wrong source is undone."""
    from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError
    from ansible_collections.flexvdi.storage.plugins.module_utils._mounts import read_mountinfo
    from ansible_collections.flexvdi.storage.plugins.module_utils._volumes import MountSpec, mount_and_verify

    wanted = os.path.join(tmp_paths["root"], "wanted")
    mount_point = os.path.join(tmp_paths["root"], "mp")
    os.makedirs(wanted)
    os.makedirs(mount_point)

    class Runner:  # mounts a tmpfs, whatever it is asked: the "wrong source" of a misbehaving helper
        def mount(self, *_args, **_kwargs):
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "wrong", mount_point], check=True)

        def umount(self, path, _what):
            subprocess.run(["umount", path], check=True)

    class Host:
        runner = Runner()
        mounts = None

        def forget_mounts(self):
            self.mounts = read_mountinfo()

    host = Host()
    with pytest.raises(StorageError, match="mount returned success but .* is mounted from wrong"):
        mount_and_verify(host, MountSpec(wanted, "bind", "none", ["bind"]), mount_point, "media storage m")
    assert mount_point not in mounts()


def _play(args, check_mode=False):
    task = {"name": "media", "flexvdi.storage.media_storage": args, "register": "media"}
    if check_mode:
        task["check_mode"] = True
    return json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}])


def test_check_mode_without_cifs_tools_says_what_it_skipped(run_playbook, tmp_paths, smb_server, media_args):
    """A fresh host: no smbclient, no mount.cifs. Check mode warns; a real run refuses, writing nothing."""
    before = snapshot(tmp_paths)
    hidden = ["smbclient", "mount.cifs"]
    checked = run_playbook(_play(media_args, check_mode=True), hide_commands=hidden)
    assert checked.rc == 0, checked.stdout
    output = " ".join((checked.stdout + checked.stderr).split())
    assert "check mode: smbclient and mount.cifs are not installed yet" in output
    assert "a real run checks them with smbclient before it writes or mounts anything" in output
    assert "rc=127" not in output
    real = run_playbook(_play(media_args), hide_commands=hidden)
    assert real.rc != 0
    assert "run the flexvdi.storage.cifs_client role first" in real.stdout
    assert snapshot(tmp_paths) == before


def test_cifs_without_a_qemu_user_warns(run_playbook, tmp_paths, smb_server, media_args):
    """Guests run as the qemu user: a share mounted without its uid/gid is root's alone."""
    with open("/etc/passwd", encoding="utf-8") as handle:
        passwd = "".join(line for line in handle if line.split(":")[0] not in ("libvirt-qemu", "qemu"))
    result = run_playbook(_play(media_args, check_mode=True), replace_files={"/etc/passwd": passwd})
    assert result.rc == 0, result.stdout
    output = " ".join((result.stdout + result.stderr).split())
    assert "no qemu user on this host" in output and "guests will not read its ISO images" in output
