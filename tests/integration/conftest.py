"""Fixtures of the integration tier: run modules and playbooks for real on this host.

This file is the ONE place that knows how Ansible is driven from pytest. Tests use only these
fixture names, so the machinery behind them can change without touching a test:

    run_module(name, args, check=False, diff=False, namespace=None) -> dict
    run_playbook(path_or_yaml_text, extra_vars=None, check=False, verbosity=0, inventory=None,
                 hide_commands=(), replace_files=None, namespace=None, env=None)
        -> PlaybookResult(rc, stdout, stderr, args)
    loopdev(fstype, size_mb=300) -> "/dev/loopN"        (fstype: ext4, xfs, btrfs, none)
    tmp_paths -> {"registry": str, "fstab": str, "root": str}   (also as attributes)
    qemu_user -> "libvirt-qemu" or "qemu"
    by_id(device) -> "/dev/disk/by-id/flexvdi-test-<random>"   (a by-id name for a loop device)
    udev -> Udev(rules_dir, namespace)   (a running systemd-udevd; pass namespace to run_module)

Why not pytest-ansible's `ansible_module` / `ansible_adhoc` (the design's first choice):
pytest-ansible 26.10.0 on ansible-core 2.21 cannot run a module in check or diff mode. Its
`--ansible-check` option is parsed but never handed to Ansible (the module dispatcher builds
the ad-hoc CLI from connection/user/become/module_path only; a module ran for real under
`pytest --check`), there is no diff option at all, its host management is marked deprecated,
and the play it builds uses the mapping form of `action`, which ansible-core 2.23 removes.
Upstream ends the project in 2026-12. So run_module runs the module the way a user's playbook
would: a one-task play for `localhost` (connection local, the interpreter of the venv running
pytest) through `ansible-playbook [--check] [--diff]` of that same venv, with the arguments in
a 0600 file (never on a command line) and the `ansible.posix.json` stdout callback (from the
`ansible` package of .venv/newest) to read back the module's result. pytest-ansible is not installed (its unit-test
plugin also builds a ./collections symlink farm that shadows the working tree).
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TIMEOUT = 900  # seconds for one module or playbook run

MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f", "-m", "reflink=1"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
    "none": None,
}

_LOOP_CTL_GET_FREE = 0x4C82  # ioctl on /dev/loop-control: allocate and return a free loop number


# --- running Ansible -------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable: {value!r}")


def _write_private(path: Path, data: Any) -> Path:
    """Write data as JSON (which is YAML too) readable by root only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, default=_json_default)
    return path


def _ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # pyenv shims on PATH make interpreter discovery pick a shim that fails for versions not
    # selected globally; the venv comes first, the shims go.
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not p.endswith("/.pyenv/shims")]
    env.update(
        PATH=os.pathsep.join([str(VENV_BIN), *path]),
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(cmd, -9, exc.stdout or "", f"timed out after {TIMEOUT}s: {cmd}")


@dataclass
class PlaybookResult:
    """What run_playbook returns: like subprocess.CompletedProcess, with `rc`."""

    rc: int
    stdout: str
    stderr: str
    args: list[str]

    @property
    def returncode(self) -> int:
        return self.rc


@pytest.fixture(scope="session")
def localhost_inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inventory of one host, `localhost`, run with connection local by this venv's Python."""
    inventory = tmp_path_factory.mktemp("inventory") / "localhost.yml"
    hosts = {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}
    return _write_private(inventory, {"all": {"hosts": hosts}})


@pytest.fixture(scope="session")
def _json_callback() -> str:
    name = "ansible.posix.json"
    probe = _run([str(VENV_BIN / "ansible-doc"), "-t", "callback", "--json", name], _ansible_env())
    if probe.returncode != 0:
        pytest.fail(f"the {name} callback is missing from {VENV_BIN.parent}: run `make setup`", pytrace=False)
    return name


@pytest.fixture
def run_module(tmp_path_factory: pytest.TempPathFactory, localhost_inventory: Path, _json_callback: str):
    """run_module(name, args, check=False, diff=False, namespace=None) -> the module's result dict.

    Runs module `name` (a FQCN) on localhost through ansible-playbook, in check mode and/or
    diff mode when asked, in the mount namespace of process `namespace` when given. A failing
    module does not raise: its result has `failed: true` and `msg`; so does an Ansible error before the module ran (unknown module, bad arguments),
    with Ansible's stderr as `msg`. Ansible's own output is printed, so a failing test shows it.
    """

    def _run_module(
        name: str, args: dict | None = None, check: bool = False, diff: bool = False, namespace: int | None = None
    ) -> dict:
        work = tmp_path_factory.mktemp("run_module")
        task = {"name": name, name: dict(args or {})}
        play = [{"name": f"run_module {name}", "hosts": "localhost", "gather_facts": False, "tasks": [task]}]
        playbook = _write_private(work / "playbook.yml", play)
        cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(localhost_inventory), str(playbook)]
        if namespace is not None:  # the mount namespace of that process (the udev fixture's udevd)
            cmd = ["nsenter", f"--target={namespace}", "--mount", f"--wd={REPO_ROOT}", "--", *cmd]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc = _run(cmd, _ansible_env(ANSIBLE_STDOUT_CALLBACK=_json_callback, ANSIBLE_LOAD_CALLBACK_PLUGINS="1"))
        print(f"$ {' '.join(cmd)}  (rc={proc.returncode})\n{proc.stderr}", file=sys.stderr)
        return _module_result(proc)

    return _run_module


def _module_result(proc: subprocess.CompletedProcess) -> dict:
    def failure(msg: str) -> dict:
        return {"failed": True, "changed": False, "msg": msg.strip(), "rc": proc.returncode}

    stdout = proc.stdout
    start = stdout.find("{")
    if start < 0:
        return failure(proc.stderr or stdout or "ansible-playbook printed nothing")
    try:
        report = json.loads(stdout[start:])
    except json.JSONDecodeError as exc:
        return failure(f"cannot read ansible-playbook's JSON output ({exc}): {proc.stderr}\n{stdout}")
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            result = task.get("hosts", {}).get("localhost")
            if result is not None:
                result = dict(result)
                result.pop("action", None)  # added by the callback, not by the module
                if result.get("unreachable"):
                    result["failed"] = True
                return result
    return failure(proc.stderr or "the module did not run")


@pytest.fixture
def run_playbook(tmp_path_factory: pytest.TempPathFactory, localhost_inventory: Path):
    """run_playbook(path_or_yaml_text, extra_vars=None, check=False, verbosity=0, inventory=None,
    hide_commands=(), replace_files=None, namespace=None, env=None).

    `path_or_yaml_text`: a playbook path (absolute, or relative to the repository root), a
    playbook FQCN (flexvdi.storage.site), or the text of a playbook (anything with a newline).
    `inventory` defaults to localhost alone (connection local); pass a path such as
    "inventories/local/hosts.yml" for another. Runs the venv's ansible-playbook from the
    repository root with its ansible.cfg (but results printed as JSON, one line per string)
    and returns rc, stdout, stderr and the command.

    `hide_commands` (names such as ["testparm", "smbclient"]) runs the playbook as on a host
    where those commands are not installed: in a private mount namespace (`unshare --mount
    --propagation private`, so nothing leaks to the host or to other tests) where every file of
    that name in PATH and the sbin/bin directories is bind-mounted over by an empty file of mode
    0644, so `command -v`, Ansible's get_bin_path and exec all fail. apt-get, apt, aptitude and
    dpkg are hidden too, so such a run can never install the commands back (the apt module still
    reports, from its cache, what is installed). Needs root.

    `replace_files` ({"/etc/passwd": text}) makes each file read as the text given, in the same
    private namespace (a host without the qemu user, say); the host's files are never touched.

    `namespace` (a pid, the udev fixture's) runs the playbook in that process's mount namespace.
    `env` adds environment variables (Ansible settings such as ANSIBLE_SHOW_CUSTOM_STATS).
    """

    def _run_playbook(
        path_or_yaml_text: str | os.PathLike,
        extra_vars: dict | None = None,
        check: bool = False,
        verbosity: int = 0,
        inventory: str | os.PathLike | None = None,
        hide_commands: list[str] | tuple[str, ...] = (),
        replace_files: dict[str, str] | None = None,
        namespace: int | None = None,
        env: dict[str, str] | None = None,
    ) -> PlaybookResult:
        work = tmp_path_factory.mktemp("run_playbook")
        playbook = _playbook_arg(path_or_yaml_text, work)
        cmd = [str(VENV_BIN / "ansible-playbook"), "-i", _inventory_arg(inventory, localhost_inventory), playbook]
        if extra_vars:
            cmd += ["-e", "@" + str(_write_private(work / "extra_vars.json", extra_vars))]
        if check:
            cmd.append("--check")
        if verbosity:
            cmd.append("-" + "v" * verbosity)
        # JSON results: ansible.cfg's yaml format folds long strings at 80 columns, which
        # breaks searching stdout for a line; JSON keeps each string on one line.
        env = _ansible_env(ANSIBLE_CALLBACK_RESULT_FORMAT="json", **(env or {}))
        if hide_commands or replace_files:
            cmd = _hiding_commands(cmd, [*hide_commands, *INSTALLERS], env["PATH"], work, replace_files)
        if namespace is not None:  # the mount namespace of that process (the udev fixture's udevd)
            cmd = ["nsenter", f"--target={namespace}", "--mount", f"--wd={REPO_ROOT}", "--", *cmd]
        proc = _run(cmd, env)
        print(f"$ {' '.join(cmd)}  (rc={proc.returncode})\n{proc.stdout}\n{proc.stderr}", file=sys.stderr)
        return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, cmd)

    return _run_playbook


# Hidden as well whenever run_playbook hides commands: nothing can install them back.
INSTALLERS = ("apt-get", "apt", "aptitude", "dpkg")
COMMAND_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

# Run by `unshare --mount --propagation private` as:
#   sh -c SCRIPT hide EMPTY [SOURCE TARGET]... -- PATH... -- COMMAND...
_HIDE_SCRIPT = """\
empty=$1; shift
while [ "$1" != -- ]; do
    mount --bind "$1" "$2" || { echo "replace_files: cannot replace $2" >&2; exit 125; }
    shift 2
done
shift
while [ "$1" != -- ]; do
    mount --bind "$empty" "$1" || { echo "hide_commands: cannot hide $1" >&2; exit 125; }
    shift
done
shift
exec "$@"
"""


def _command_files(names: list[str], path: str) -> list[str]:
    """The files (symbolic links resolved, once each) that `names` resolve to in path and COMMAND_DIRS."""
    found: dict[str, None] = {}
    for name in names:
        for directory in [*path.split(os.pathsep), *COMMAND_DIRS]:
            candidate = os.path.join(directory, name)
            if directory and os.path.isfile(candidate):
                found[os.path.realpath(candidate)] = None
    return list(found)


def _hiding_commands(
    cmd: list[str], names: list[str], path: str, work: Path, replace_files: dict[str, str] | None = None
) -> list[str]:
    """cmd, run in a private mount namespace where the commands `names` are empty, 0644 files
    and each file of `replace_files` (path -> text) reads as the text given."""
    _require_root("run_playbook(hide_commands=... or replace_files=...)")
    empty = work / "hidden-command"
    empty.write_bytes(b"")
    empty.chmod(0o644)
    pairs = []
    for number, (target, text) in enumerate(sorted((replace_files or {}).items())):
        source = work / f"replacement-{number}"
        source.write_text(text)
        source.chmod(os.stat(target).st_mode & 0o777)
        pairs += [str(source), target]
    files = _command_files(names, path)
    # The script hides with mount(8): if mount itself is hidden, it goes last.
    mount = os.path.realpath(shutil.which("mount") or "/bin/mount")
    files.sort(key=lambda f: f == mount)
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        _HIDE_SCRIPT,
        "hide",
        str(empty),
        *pairs,
        "--",
        *files,
        "--",
        *cmd,
    ]


def _playbook_arg(playbook: str | os.PathLike, work: Path) -> str:
    if isinstance(playbook, os.PathLike) or "\n" not in playbook:
        text = os.fspath(playbook)
        for candidate in (Path(text), REPO_ROOT / text):
            if candidate.is_file():
                return str(candidate.resolve())
        if re.fullmatch(r"\w+\.\w+\.\w+", text):
            return text  # a playbook in a collection: flexvdi.storage.site
        if not text.lstrip().startswith(("-", "[")):
            raise FileNotFoundError(f"run_playbook: no playbook file {text!r} (and not a FQCN or YAML text)")
    path = work / "playbook.yml"
    path.write_text(os.fspath(playbook))
    return str(path)


def _inventory_arg(inventory: str | os.PathLike | None, default: Path) -> str:
    if inventory is None:
        return str(default)
    text = os.fspath(inventory)
    if not Path(text).exists() and (REPO_ROOT / text).exists():
        return str(REPO_ROOT / text)
    return text  # a path, or a host list such as "localhost,"


# --- mounts ----------------------------------------------------------------------------------


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mounts() -> list[tuple[str, str]]:
    """(source, mount point) of every mount of this mount namespace, from /proc/self/mountinfo."""
    mounts = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, _sep, right = line.partition(" - ")
            mount_point = _unescape(left.split()[4])
            source = _unescape(right.split()[1]) if right else ""
            mounts.append((source, mount_point))
    return mounts


def _umount(mount_points: list[str]) -> list[str]:
    """Unmount, deepest first; lazily when busy. Returns what could not be unmounted."""
    left = []
    for mount_point in sorted(set(mount_points), key=len, reverse=True):
        for cmd in (["umount", mount_point], ["umount", "-l", mount_point]):
            if subprocess.run(cmd, capture_output=True, check=False).returncode == 0:
                break
        else:
            left.append(mount_point)
    return left


def _under(path: str, directory: Path) -> bool:
    return path == str(directory) or path.startswith(str(directory).rstrip("/") + "/")


# --- loop devices ----------------------------------------------------------------------------


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.fail(f"{what} needs root: run the integration tier as root (make test-integration)", pytrace=False)


def _ensure_free_loop_node() -> None:
    """Make sure the next free loop device has its /dev node (some containers lack them)."""
    control = Path("/dev/loop-control")
    if not control.exists():
        os.mknod(control, 0o660 | stat.S_IFCHR, os.makedev(10, 237))
    with open(control, "rb") as handle:
        number = fcntl.ioctl(handle, _LOOP_CTL_GET_FREE)
    node = Path(f"/dev/loop{number}")
    if not node.exists():
        os.mknod(node, 0o660 | stat.S_IFBLK, os.makedev(7, number))


@pytest.fixture
def loopdev(tmp_path_factory: pytest.TempPathFactory):
    """loopdev(fstype, size_mb=300) -> device path of a fresh loop device over a sparse file.

    fstype: "ext4" (mkfs.ext4 -q -F), "xfs" (mkfs.xfs -q -f -m reflink=1), "btrfs"
    (mkfs.btrfs -q -f) or "none" (no filesystem: a blank device). At teardown, even after a
    failed test, whatever is mounted from each device is unmounted, the device detached and
    its file removed.
    """
    _require_root("loopdev")
    created: list[tuple[str, Path]] = []

    def _loopdev(fstype: str, size_mb: int = 300) -> str:
        if fstype not in MKFS:
            raise ValueError(f"loopdev: fstype must be one of {sorted(MKFS)}, not {fstype!r}")
        image = tmp_path_factory.mktemp("loop") / f"{fstype}.img"
        with open(image, "wb") as handle:
            handle.truncate(size_mb * 1024 * 1024)
        _ensure_free_loop_node()
        proc = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            image.unlink()
            pytest.fail(f"losetup --find --show {image} failed: {proc.stderr.strip()}", pytrace=False)
        device = proc.stdout.strip()
        created.append((device, image))
        if MKFS[fstype]:
            subprocess.run([*MKFS[fstype], device], capture_output=True, text=True, check=True)
        return device

    yield _loopdev

    problems = []
    for device, image in reversed(created):
        problems += _umount([mount_point for source, mount_point in _mounts() if source == device])
        if subprocess.run(["losetup", "-d", device], capture_output=True, check=False).returncode != 0:
            problems.append(f"losetup -d {device}")
        image.unlink(missing_ok=True)
    if problems:
        pytest.fail(f"loopdev teardown left behind: {', '.join(problems)}", pytrace=False)


# --- per-test paths --------------------------------------------------------------------------


class TmpPaths(dict):
    """The per-test paths (str), as keys and as attributes: tmp_paths["registry"], tmp_paths.registry."""

    def __getattr__(self, name: str) -> str:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


TMP_PATHS_BASE = Path("/tmp/flexvdi-integration")


@pytest.fixture
def tmp_paths(request: pytest.FixtureRequest):
    """Per-test stand-ins for the host's files, to pass to modules (paths as str).

    registry: path of a JSON registry that does not exist yet (its directory does)
    fstab:    a copy of /etc/fstab (empty if the host has none)
    root:     an empty directory for volumes and mount points
    They live under /tmp/flexvdi-integration/<test>-XXXX, mode 0755 all the way down, not in
    pytest's tmp_path: pytest makes that 0700, and the qemu user must be able to reach a
    volume for `qemu_writable` to be true. At teardown, anything still mounted under the
    directory is unmounted, then the directory is removed (kept if something stays mounted).
    """
    TMP_PATHS_BASE.mkdir(mode=0o755, exist_ok=True)
    TMP_PATHS_BASE.chmod(0o755)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)[:60]
    base = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=TMP_PATHS_BASE))
    base.chmod(0o755)
    (base / "etc").mkdir(mode=0o755)
    (base / "volumes").mkdir(mode=0o755)
    fstab = base / "etc" / "fstab"
    if Path("/etc/fstab").is_file():
        shutil.copyfile("/etc/fstab", fstab)
    else:
        fstab.touch()
    yield TmpPaths(registry=str(base / "etc" / "storage.json"), fstab=str(fstab), root=str(base / "volumes"))
    left = _umount([mount_point for _source, mount_point in _mounts() if _under(mount_point, base)])
    if left:
        pytest.fail(f"tmp_paths teardown could not unmount: {', '.join(left)}", pytrace=False)
    shutil.rmtree(base, ignore_errors=True)


# --- the hypervisor user ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def qemu_user() -> str:
    """The user QEMU runs as here: libvirt-qemu (Debian) or qemu. `make setup` creates it."""
    for name in ("libvirt-qemu", "qemu"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.fail("neither libvirt-qemu nor qemu exists: run `make setup`", pytrace=False)


# --- stable disk names and udev ----------------------------------------------------------------

BY_ID = "/dev/disk/by-id"


@pytest.fixture
def by_id():
    """by_id(device) -> /dev/disk/by-id/flexvdi-test-<random> pointing at ``device``, removed at teardown.

    Loop devices have no by-id names; /dev/disk and /dev/disk/by-id are created when missing and
    removed again if this fixture created them (and they are empty).
    """
    created_dirs = [d for d in ("/dev/disk", BY_ID) if not os.path.isdir(d)]
    for directory in created_dirs:
        os.mkdir(directory, 0o755)
    links = []

    def _by_id(device):
        link = os.path.join(BY_ID, "flexvdi-test-" + secrets.token_hex(4))
        os.symlink(device, link)
        links.append(link)
        return link

    yield _by_id
    for link in links:
        if os.path.islink(link):
            os.unlink(link)
    for directory in reversed(created_dirs):
        if os.path.isdir(directory) and not os.listdir(directory):
            os.rmdir(directory)


@dataclass
class Udev:
    """What the udev fixture gives: where rules go, and the mount namespace to run modules in."""

    rules_dir: str
    namespace: int | None


UDEVD = "/lib/systemd/systemd-udevd"
# Run by `unshare --mount --propagation slave` as: sh -c SCRIPT udev RULES_DIR EMPTY_DIR UDEVD
_UDEVD_SCRIPT = """\
mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/udev /run/lock &&
mount --bind "$1" /etc/udev/rules.d &&
mount --bind "$2" "$(readlink -f /lib/udev/rules.d)" || exit 125
exec "$3"
"""


@pytest.fixture
def udev(tmp_paths):
    """A running systemd-udevd whose rules are only those in ``rules_dir`` (an empty directory of the test).

    When this host runs udev (/run/udev/control), that one is used: rules_dir is
    /etc/udev/rules.d and namespace None; the test names its rules uniquely and removes them.
    Otherwise (containers) the fixture starts systemd-udevd in a private mount namespace whose
    /run is its own, whose /etc/udev/rules.d is ``rules_dir`` and whose system rules directory
    is empty: it handles every uevent of the machine but applies only the test's rules, so no
    other device changes. Modules that talk to it (udevadm) run there: pass ``namespace`` to
    run_module. Mounts made after it started show there only when made there too (nsenter
    --target=namespace --mount): this host's mounts are private, so none propagates in (slave)
    nor out. udevd is stopped at teardown. Needs the udev package (make setup).
    """
    _require_root("udev")
    if os.path.exists("/run/udev/control"):
        yield Udev("/etc/udev/rules.d", None)
        return
    if not os.path.exists(UDEVD) or not shutil.which("udevadm"):
        pytest.fail(f"{UDEVD} or udevadm is missing: run `make setup` (package udev)", pytrace=False)
    base = Path(tmp_paths["root"]).parent
    rules, empty = base / "udev-rules.d", base / "udev-system-rules"
    rules.mkdir(mode=0o755)
    empty.mkdir(mode=0o755)
    # slave: the test's own mounts (made after udevd started) show in the namespace; none leaks out.
    cmd = ["unshare", "--mount", "--propagation", "slave", "--", "/bin/sh", "-c", _UDEVD_SCRIPT, "udev"]
    proc = subprocess.Popen(
        [*cmd, str(rules), str(empty), UDEVD], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    control = f"/proc/{proc.pid}/root/run/udev/control"
    for _attempt in range(100):
        if proc.poll() is not None or os.path.exists(control):
            break
        time.sleep(0.05)
    if not os.path.exists(control):
        proc.kill()
        pytest.fail(f"systemd-udevd did not start: {proc.communicate()[1].strip()}", pytrace=False)
    try:
        yield Udev(str(rules), proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
