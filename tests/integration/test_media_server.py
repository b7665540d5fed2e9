"""The media_server role, applied by ansible-playbook to this host, on a PRIVATE Samba.

Nothing of the host's own Samba is touched: smb.conf is written to a temporary directory
(media_server_config_path), every state directory of Samba (private dir, hence the tdbsam
passdb; lock, state, cache, pid and ncalrpc directories; log file) is moved there through
media_server_global_options, the role does not manage the service (media_server_manage_service:
false) and this test runs smbd itself on that smb.conf, bound to 127.0.0.1:4445 only. The only
host-wide effect is the system user `flexvdi`, removed again when this test created it.

Proves: check mode changes nothing, a real run converges, a second run reports changed=0; the
share is read/write for its user over SMB3; a wrong password, SMB1 and SMB2 are refused; the
password is nowhere in the -vvvv output, in smb.conf, or on any process's command line.

An existing Samba server is respected: its other shares and settings stay byte for byte, the
role adds its share and `server min protocol` only, keeps a backup, and smbd serves both shares;
Debian's stock smb.conf becomes the role's own server (backed up), whose added shares are kept;
a share of the same name that the role did not write is refused.

Check mode on a host where Samba and the CIFS tools are not installed yet (run_playbook's
hide_commands) succeeds and says which checks it skipped: the roles alone, and the whole
getting-started flow.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from _executions import JSON_OUTPUT, changed, executions

HOST = "127.0.0.1"
PORT = 4445
SHARE = "media"
USER = "flexvdi"

PLAY = """\
- name: media_server role on a private Samba
  hosts: localhost
  gather_facts: false
  roles:
    - role: flexvdi.storage.media_server
"""


def _recap(stdout: str) -> dict[str, int]:
    found = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout)
    assert found, stdout[-3000:]
    return {k: int(v) for k, v in zip(("ok", "changed", "unreachable", "failed"), found.groups())}


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains text (our smbd, its children, samba-dcerpcd it spawned)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry))
    return found


class _CmdlineWatch:
    """Samples every process's command line while a play runs; collects those holding a secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.hits: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                if self.secret in cmdline:
                    # Record the process without the secret itself.
                    self.hits.append(
                        cmdline.replace(self.secret, b"<SECRET>").replace(b"\0", b" ").decode(errors="replace")
                    )
            self._stop.wait(0.05)

    def __enter__(self) -> _CmdlineWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _system_samba_state() -> dict[str, tuple[int, int]]:
    """Size and mtime of every file of this host's own Samba (config, state, passdb, cache)."""
    state = {}
    for top in ("/etc/samba", "/var/lib/samba", "/var/cache/samba"):
        for root, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                with contextlib.suppress(OSError):
                    info = os.lstat(path)
                    state[path] = (info.st_size, info.st_mtime_ns)
    return state


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def samba_lab():
    """A private Samba world under one temporary directory; stops smbd and cleans up after."""
    if os.geteuid() != 0:
        pytest.fail("test_media_server needs root: run the integration tier as root", pytrace=False)
    if not shutil.which("smbd") or not shutil.which("smbclient"):
        pytest.skip("samba and smbclient are not installed")
    if _port_open(HOST, PORT):
        pytest.fail(f"{HOST}:{PORT} is already taken: another smbd (or test) is listening there", pytrace=False)
    user_existed = _user_exists(USER)
    # Not under pytest's 0700 tmp tree: the share user must be able to reach the share.
    base = Path(tempfile.mkdtemp(prefix="flexvdi-media-server-"))
    base.chmod(0o755)
    dirs = {name: base / name for name in ("private", "lock", "state", "cache", "pid", "ncalrpc", "log")}
    for path in dirs.values():
        path.mkdir(mode=0o700)
    config = base / "smb.conf"
    password = f"Fv {secrets.token_hex(8)}!$'\"x"  # spaces and shell/quote characters on purpose
    lab = {
        "base": base,
        "config": config,
        "share_path": base / "share",
        "password": password,
        "smbd": None,
        "vars": {
            "media_server_config_path": str(config),
            "media_server_path": str(base / "share"),
            "media_server_user": USER,
            "media_server_share_name": SHARE,
            "media_server_password": password,
            "media_server_interfaces": [HOST],
            "media_server_smb_port": PORT,
            "media_server_manage_service": False,
            "media_server_apt_cache_valid_time": 0,
            "media_server_global_options": {
                "private dir": str(dirs["private"]),
                "lock directory": str(dirs["lock"]),
                "state directory": str(dirs["state"]),
                "cache directory": str(dirs["cache"]),
                "pid directory": str(dirs["pid"]),
                "ncalrpc dir": str(dirs["ncalrpc"]),
                "log file": str(dirs["log"] / "log.%m"),
            },
        },
    }
    yield lab

    problems = []
    smbd = lab["smbd"]
    if smbd is not None and smbd.poll() is None:
        smbd.send_signal(signal.SIGTERM)
        try:
            smbd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            smbd.kill()
            smbd.wait(timeout=10)
    if smbd is not None:
        smbd.log.close()
    # smbd's children and the samba-dcerpcd it may have spawned carry our smb.conf path.
    deadline = time.monotonic() + 5
    while _processes_mentioning(str(config)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in _processes_mentioning(str(config)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if not user_existed and _user_exists(USER):
        proc = subprocess.run(["userdel", USER], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            problems.append(f"userdel {USER}: {proc.stderr.strip()}")
    shutil.rmtree(base, ignore_errors=True)
    if problems:
        pytest.fail("samba_lab teardown: " + "; ".join(problems), pytrace=False)


def _start_smbd(lab: dict) -> None:
    log = open(lab["base"] / "log" / "smbd.out", "w")
    smbd = subprocess.Popen(
        ["smbd", "-F", "--no-process-group", "-s", str(lab["config"])],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own session: when it stops, smbd signals its whole process group (kill(0, SIGTERM)),
        # which without this would be pytest's.
        start_new_session=True,
    )
    smbd.log = log
    lab["smbd"] = smbd
    deadline = time.monotonic() + 15
    while not _port_open(HOST, PORT):
        if smbd.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"smbd did not listen on {HOST}:{PORT}: {(lab['base'] / 'log' / 'smbd.out').read_text()}")
        time.sleep(0.1)


def _smbclient(*args: str, password: str | None, share: str = SHARE, cwd: Path | None = None):
    env = {k: v for k, v in os.environ.items() if k not in ("PASSWD", "PASSWD_FD")}
    env["LC_ALL"] = "C"
    if password is not None:
        env["PASSWD"] = password  # the environment, never argv
    cmd = ["smbclient", f"//{HOST}/{share}", "-p", str(PORT), "-U", USER, *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP listener on port, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, 32, 8))
                    found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


def test_media_server_private_samba(run_playbook, samba_lab):
    lab = samba_lab
    password = lab["password"]
    user_existed = _user_exists(USER)
    system_before = _system_samba_state()

    with _CmdlineWatch(password) as watch:
        checked = run_playbook(PLAY, extra_vars=lab["vars"], check=True)
        assert checked.rc == 0, checked.stdout[-3000:]
        assert _recap(checked.stdout)["changed"] > 0
        assert not lab["config"].exists(), "check mode wrote smb.conf"
        assert not lab["share_path"].exists(), "check mode created the share directory"
        assert _user_exists(USER) == user_existed, "check mode created the user"

        first = run_playbook(PLAY, extra_vars=lab["vars"], verbosity=4)
        assert first.rc == 0, first.stdout[-3000:]
        assert _recap(first.stdout)["changed"] > 0

        again = run_playbook(PLAY, extra_vars=lab["vars"])
        assert again.rc == 0, again.stdout[-3000:]
        assert _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]

    # The user: a system account without a login shell, owning the share.
    account = pwd.getpwnam(USER)
    assert account.pw_uid < 1000
    assert account.pw_shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
    assert lab["share_path"].stat().st_uid == account.pw_uid

    # The secret: never in the -vvvv output, smb.conf, nor any command line seen during the runs.
    for run in (checked, first, again):
        assert password not in run.stdout and password not in run.stderr
    assert "-vvvv" in first.args and "ESTABLISH LOCAL CONNECTION" in first.stdout  # it really was -vvvv
    config_text = lab["config"].read_text()
    assert password not in config_text
    assert watch.hits == [], f"the password was on a command line: {watch.hits}"

    # The private config, as the role wrote it.
    assert re.search(r"^\s*bind interfaces only = yes$", config_text, re.M)
    assert re.search(r"^\s*disable netbios = yes$", config_text, re.M)
    assert re.search(rf"^\s*smb ports = {PORT}$", config_text, re.M)
    assert f"private dir = {lab['base'] / 'private'}" in config_text
    testparm = subprocess.run(
        ["testparm", "-s", "--suppress-prompt", str(lab["config"])], capture_output=True, text=True, check=False
    )
    assert testparm.returncode == 0, testparm.stderr

    _start_smbd(lab)
    assert _listening_addresses(PORT) == {HOST}
    assert password not in " ".join(
        Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") for pid in _processes_mentioning("smbd")
    )

    # Read/write for the user over SMB3.
    local = lab["base"] / "upload.txt"
    local.write_text("flexvdi media\n")
    rw = _smbclient("-m", "SMB3", "-c", "put upload.txt hello.txt; ls", password=password, cwd=lab["base"])
    assert rw.returncode == 0, rw.stdout + rw.stderr
    assert "hello.txt" in rw.stdout
    served = lab["share_path"] / "hello.txt"
    assert served.read_text() == "flexvdi media\n"
    assert served.stat().st_uid == account.pw_uid
    assert password not in rw.stdout + rw.stderr

    # A wrong password is refused.
    wrong = _smbclient("-m", "SMB3", "-c", "ls", password=password + "x")
    assert wrong.returncode != 0
    assert "NT_STATUS_LOGON_FAILURE" in wrong.stdout + wrong.stderr

    # SMB1 is refused by the server (the client is told to allow it, or it would refuse first).
    smb1 = _smbclient("--option=client min protocol=NT1", "-m", "NT1", "-c", "ls", password=password)
    assert smb1.returncode != 0
    assert "protocol negotiation failed" in smb1.stdout + smb1.stderr, smb1.stdout + smb1.stderr
    # And so is SMB2 with the default server min protocol, SMB3.
    smb2 = _smbclient("-m", "SMB2_10", "-c", "ls", password=password)
    assert smb2.returncode != 0
    assert "NT_STATUS_NOT_SUPPORTED" in smb2.stdout + smb2.stderr, smb2.stdout + smb2.stderr

    # The host's own Samba was never touched (check mode included).
    assert _system_samba_state() == system_before


def test_media_server_requires_password(run_playbook, samba_lab):
    lab = samba_lab
    extra = dict(lab["vars"], media_server_password="")
    failed = run_playbook(PLAY, extra_vars=extra)
    assert failed.rc != 0
    assert "media_server_password is empty" in failed.stdout, failed.stdout[-3000:]
    assert _recap(failed.stdout)["changed"] == 0
    assert not lab["config"].exists()


# --- an existing Samba server ----------------------------------------------------------------


def _private_globals(lab: dict) -> str:
    """The [global] lines that keep an smbd of this test off the host's Samba (state, port)."""
    options = dict(lab["vars"]["media_server_global_options"])
    options.update({"interfaces": HOST, "bind interfaces only": "yes", "smb ports": str(PORT)})
    return "".join(f"   {name} = {value}\n" for name, value in options.items())


def _testparm(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["testparm", "-s", "--suppress-prompt", *args, str(config)],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, LC_ALL="C"),
    )


def _backups(config: Path) -> list[Path]:
    """Backups that ansible.builtin.copy/blockinfile `backup: true` left next to config."""
    return sorted(config.parent.glob(config.name + ".*~"))


def test_media_server_keeps_an_existing_samba_server(run_playbook, samba_lab):
    lab = samba_lab
    other = lab["base"] / "other"
    other.mkdir(mode=0o755)
    (other / "kept.txt").write_text("other share\n")
    original = (
        "# The admin's own Samba server, with a share of its own.\n"
        "[global]\n"
        "   workgroup = OTHERGROUP\n"
        "   server string = Other server of %h\n"
        "   max log size = 4321\n"
        "   disable netbios = yes\n"
        f"{_private_globals(lab)}"
        "\n"
        "[other]\n"
        f"   path = {other}\n"
        "   comment = The other share\n"
        "   hide dot files = no\n"
        "   read only = yes\n"
    ).encode()
    lab["config"].write_bytes(original)
    # The role's own-server settings are left at their defaults (interfaces lo, port 445,
    # workgroup WORKGROUP): on an existing server they must not replace the admin's.
    extra = {k: v for k, v in lab["vars"].items() if k not in ("media_server_interfaces", "media_server_smb_port")}

    checked = run_playbook(PLAY, extra_vars=extra, check=True)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert lab["config"].read_bytes() == original, "check mode changed smb.conf"
    assert _backups(lab["config"]) == [], "check mode left a backup"

    first = run_playbook(PLAY, extra_vars=extra)
    assert first.rc == 0, first.stdout[-3000:]
    assert _recap(first.stdout)["changed"] > 0
    again = run_playbook(PLAY, extra_vars=extra)
    assert again.rc == 0, again.stdout[-3000:]
    assert _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]

    # Every byte of the admin's file is still there, in place; the role's lines come after it.
    written = lab["config"].read_bytes()
    assert written.startswith(original), written.decode()
    added = written[len(original) :].decode()
    assert "[media]" in added and f"path = {lab['share_path']}" in added
    assert re.search(r"^\s*server min protocol = SMB3$", added, re.M)
    for setting in ("interfaces", "bind interfaces only", "smb ports", "workgroup", "passdb backend", "security"):
        assert not re.search(rf"^\s*{setting}\s*=", added, re.M), f"the role set {setting} of the admin's server"
    # One backup, of the original, from the one run that changed the file.
    backups = _backups(lab["config"])
    assert len(backups) == 1, backups
    assert backups[0].read_bytes() == original

    # What Samba reads: both shares, the admin's settings and the role's protocol floor.
    dump = _testparm(lab["config"])
    assert dump.returncode == 0, dump.stderr
    sections = re.findall(r"^\[(.+)\]$", dump.stdout, re.M)
    assert sections == ["global", "other", "media"], dump.stdout
    other_section = dump.stdout.split("[other]", 1)[1].split("[media]", 1)[0]
    assert f"path = {other}" in other_section
    assert "comment = The other share" in other_section
    assert "hide dot files = No" in other_section
    global_section = dump.stdout.split("[other]", 1)[0]
    for line in ("workgroup = OTHERGROUP", "server string = Other server of %h", "max log size = 4321"):
        assert line in global_section, dump.stdout
    assert "server min protocol = SMB3" in global_section
    port = _testparm(lab["config"], "--parameter-name=smb ports")
    assert port.stdout.strip() == str(PORT), "the role replaced the admin's smb ports"

    # smbd serves both, on the admin's address and port; the role's user lists the media share.
    _start_smbd(lab)
    assert _listening_addresses(PORT) == {HOST}
    (lab["share_path"] / "disc.iso").write_bytes(b"iso")
    listed = _smbclient("-m", "SMB3", "-c", "ls", password=lab["password"])
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "disc.iso" in listed.stdout
    shares = _smbclient("-m", "SMB3", "-c", "ls", password=lab["password"], share="other")
    assert shares.returncode == 0, shares.stdout + shares.stderr
    assert "kept.txt" in shares.stdout


def test_media_server_replaces_debian_stock_config_and_keeps_added_shares(run_playbook, samba_lab):
    lab = samba_lab
    stock = Path("/usr/share/samba/smb.conf")
    if not stock.is_file():
        pytest.skip(f"{stock} (Debian's stock smb.conf) is missing")
    shutil.copyfile(stock, lab["config"])

    first = run_playbook(PLAY, extra_vars=lab["vars"])
    assert first.rc == 0, first.stdout[-3000:]
    text = lab["config"].read_text()
    # The role's own, secure server, as with no smb.conf at all: not the stock shares.
    assert text.startswith("# Samba server set up by the flexvdi.storage.media_server role.\n")
    assert "[homes]" not in text and "[printers]" not in text
    assert re.search(r"^\s*bind interfaces only = yes$", text, re.M)
    assert re.search(rf"^\s*smb ports = {PORT}$", text, re.M)
    assert re.search(r"^\s*map to guest = never$", text, re.M)
    backups = _backups(lab["config"])
    assert len(backups) == 1 and backups[0].read_bytes() == stock.read_bytes(), backups

    # The admin adds a share to the role's own server: the next runs keep it.
    extra_share = lab["base"] / "extra"
    extra_share.mkdir(mode=0o755)
    with open(lab["config"], "a") as handle:
        handle.write(f"\n[extra]\n   path = {extra_share}\n   read only = yes\n")
    with_extra = lab["config"].read_bytes()
    again = run_playbook(PLAY, extra_vars=lab["vars"])
    assert again.rc == 0, again.stdout[-3000:]
    assert _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
    assert lab["config"].read_bytes() == with_extra
    # A change of the role's settings rewrites only its block; the added share stays.
    moved = dict(lab["vars"], media_server_min_protocol="SMB3_11")
    changed = run_playbook(PLAY, extra_vars=moved)
    assert changed.rc == 0, changed.stdout[-3000:]
    assert _recap(changed.stdout)["changed"] > 0
    text = lab["config"].read_text()
    assert "server min protocol = SMB3_11" in text
    assert text.endswith(f"\n[extra]\n   path = {extra_share}\n   read only = yes\n")
    assert re.findall(r"^\[(.+)\]$", _testparm(lab["config"]).stdout, re.M) == ["global", "media", "extra"]
    assert len(_backups(lab["config"])) == 2


def test_media_server_takes_over_the_whole_file_of_its_earlier_version(run_playbook, samba_lab):
    lab = samba_lab
    # What the role wrote before it kept other servers' settings: the whole file, share unmarked.
    earlier = (
        "# Ansible managed\n"
        "# Written by the flexvdi.storage.media_server role: local changes are overwritten.\n"
        f"[global]\n{_private_globals(lab)}\n"
        f"[{SHARE}]\n   path = {lab['share_path']}\n   valid users = {USER}\n"
    )
    lab["config"].write_text(earlier)
    first = run_playbook(PLAY, extra_vars=lab["vars"])
    assert first.rc == 0, first.stdout[-3000:]
    text = lab["config"].read_text()
    assert text.startswith("# Samba server set up by the flexvdi.storage.media_server role.\n")
    assert re.findall(r"^\[(.+)\]$", _testparm(lab["config"]).stdout, re.M) == ["global", SHARE]
    assert [backup.read_text() for backup in _backups(lab["config"])] == [earlier]
    again = run_playbook(PLAY, extra_vars=lab["vars"])
    assert again.rc == 0, again.stdout[-3000:]
    assert _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]


def test_media_server_refuses_a_share_of_its_name_it_did_not_write(run_playbook, samba_lab):
    lab = samba_lab
    original = f"[global]\n{_private_globals(lab)}\n[{SHARE.upper()}]\n   path = /srv/elsewhere\n   guest ok = yes\n"
    lab["config"].write_text(original)
    failed = run_playbook(PLAY, extra_vars=lab["vars"])
    assert failed.rc != 0
    assert f"already has a share [{SHARE}] outside the lines of the flexvdi.storage.media_server role" in failed.stdout
    assert _recap(failed.stdout)["changed"] == 0, failed.stdout[-3000:]
    assert lab["config"].read_text() == original
    assert _backups(lab["config"]) == []
    assert not lab["share_path"].exists()


def test_media_server_rerun_executes_only_its_probe(run_playbook, samba_lab):
    """A run that changes nothing costs one remote execution: the probe (no apt, no slurp, no
    testparm, no user/file/copy/blockinfile, no password check of their own)."""
    lab = samba_lab
    first = run_playbook(PLAY, extra_vars=lab["vars"])
    assert first.rc == 0, first.stdout[-3000:]
    again = run_playbook(PLAY, extra_vars=lab["vars"], env=JSON_OUTPUT)
    assert again.rc == 0, again.stdout[-3000:]
    assert changed(again.stdout) == {"localhost": 0}, again.stdout[-3000:]
    ran = executions(again.stdout)["localhost"]
    assert len(ran) <= 2, f"a run that changes nothing executed on the host: {ran}"
    assert ran == ["Read this host's Samba packages, smb.conf, share user, directory and password state"]
    assert lab["password"] not in again.stdout + again.stderr

    # A changed password is still seen by that one probe, and set.
    other = dict(lab["vars"], media_server_password=lab["password"] + "2")
    reset = run_playbook(PLAY, extra_vars=other, env=JSON_OUTPUT)
    assert reset.rc == 0, reset.stdout[-3000:]
    assert changed(reset.stdout)["localhost"] > 0
    assert "Set the Samba password of the media share user" in executions(reset.stdout)["localhost"]


# --- check mode before Samba and the CIFS tools are installed --------------------------------

# What the samba, smbclient and cifs-utils packages bring, hidden as on a fresh host.
NOT_INSTALLED = ["testparm", "pdbedit", "smbpasswd", "smbd", "nmbd", "samba-dcerpcd", "smbclient", "mount.cifs"]

PLAY_ROLES = """\
- name: media_server and cifs_client roles, before Samba and the CIFS tools are installed
  hosts: localhost
  gather_facts: false
  roles:
    - role: flexvdi.storage.media_server
    - role: flexvdi.storage.cifs_client
      cifs_client_apt_cache_valid_time: 0
"""


def _assert_no_missing_command_failure(result) -> None:
    output = result.stdout + result.stderr
    assert '"rc": 127' not in output and "No such file or directory" not in output, output[-3000:]
    assert "Permission denied" not in output, output[-3000:]


def test_check_mode_of_the_roles_before_samba_is_installed(run_playbook, samba_lab):
    lab = samba_lab
    # smb.conf in a directory that does not exist yet either, as /etc/samba on a fresh host.
    config = lab["base"] / "etc-samba" / "smb.conf"
    extra = dict(lab["vars"], media_server_config_path=str(config))
    checked = run_playbook(PLAY_ROLES, extra_vars=extra, check=True, hide_commands=NOT_INSTALLED)
    assert checked.rc == 0, checked.stdout[-3000:]
    _assert_no_missing_command_failure(checked)
    out = checked.stdout
    assert "check mode: samba is not installed yet (testparm, pdbedit, smbpasswd not found)" in out, out[-3000:]
    assert f"whether the Samba password of {USER} is already set (pdbedit)" in out
    assert f"check mode: {config.parent} does not exist yet" in out
    assert "The real run installs samba, writes" in out
    assert "check mode: the CIFS client tools are not installed yet (mount.cifs, smbclient not found)" in out
    assert "The real run installs cifs-utils, smbclient" in out
    # Nothing was written, and the commands were hidden only inside the run.
    assert not config.parent.exists() and not lab["share_path"].exists()
    for name in ("testparm", "smbclient", "apt-get"):
        assert shutil.which(name), f"{name} stayed hidden after the run"


def test_getting_started_check_mode_before_samba_is_installed(run_playbook, tmp_paths):
    extra = {"storage_registry": tmp_paths["registry"], "storage_fstab": tmp_paths["fstab"]}
    host_config = Path("/etc/samba/smb.conf")
    before = host_config.read_bytes() if host_config.exists() else None
    checked = run_playbook(
        "playbooks/getting_started.yml",
        extra_vars=extra,
        check=True,
        inventory="inventories/local/hosts.yml",
        hide_commands=NOT_INSTALLED,
    )
    out = checked.stdout
    # The roles say what they skipped; then the storage role plans the storage (the
    # media_storage module skips its own smbclient check), and nothing is written.
    assert "check mode: samba is not installed yet (testparm, pdbedit, smbpasswd not found)" in out, out[-3000:]
    assert "check mode: the CIFS client tools are not installed yet (mount.cifs, smbclient not found)" in out
    assert checked.rc == 0, out[-3000:]
    _assert_no_missing_command_failure(checked)
    assert not os.path.exists(tmp_paths["registry"])
    assert (host_config.read_bytes() if host_config.exists() else None) == before
