# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the cluster roles decide from, read on a host in one execution. Private to the collection.

The engine of flexvdi.storage.host_probe: the readers every role shares (the OS, the packages
dpkg has installed, the commands on PATH, a service's state) and each role's own (o2cb's files,
configfs and the OCFS2 mounts; the trusted pool of glusterd; Samba's smb.conf, share user,
directory and password). It only reads: nothing is written, and the only programs run are
systemctl is-active, gluster pool list, testparm and pdbedit (never on a passdb that does not
exist: pdbedit would create it). The Samba password never leaves this process: it is compared
by its NT hash, and an error names only the exception's type.
"""

from __future__ import annotations

import base64
import glob
import grp
import hashlib
import os
import pwd
import re
import shutil
import stat
import struct

from ._errors import StorageError
from ._fileio import read_value
from ._mounts import read_mountinfo
from ._runner import Runner

DPKG_STATUS = "/var/lib/dpkg/status"
# Where a command is looked for: PATH, then the sbin directories a non-root PATH lacks.
SBIN_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# Where systemd looks for unit files (generated ones excepted: systemd-sysv-generator makes one
# for every init script, enabled or not).
# Seconds `gluster pool list` may take, as the collection's other Gluster reads (_gluster_cli.READ_TIMEOUT).
POOL_TIMEOUT = 60
UNIT_DIRS = ("etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system", "lib/systemd/system",
             "usr/lib/systemd/system")  # fmt: skip


def read(path, binary=False):
    """The file's content, or None when there is none."""
    try:
        if binary:
            with open(path, "rb") as handle:
                return handle.read()
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
        return None


def run(runner, argv, timeout=None):
    """{rc, stdout, stderr} of a command (through the collection's Runner: C locale, no shell, bounded by
    ``timeout`` seconds when given); rc 127 when it cannot start or did not finish in time (stderr says which)."""
    try:
        rc, out, err = runner.run(argv, argv[0], check=False, timeout=timeout)
    except StorageError as exc:
        return {"rc": 127, "stdout": "", "stderr": exc.msg}
    return {"rc": rc, "stdout": out, "stderr": err}


# --- what every role reads --------------------------------------------------------------------


def os_release(path="/etc/os-release"):
    """{debian, os_name}: whether the OS is Debian or a derivative, and its PRETTY_NAME."""
    release = {}
    for line in (read(path) or "").splitlines():
        key, sep, val = line.partition("=")
        if sep:
            release[key.strip()] = val.strip().strip("\"'")
    return {
        "debian": "debian" in [release.get("ID", "")] + release.get("ID_LIKE", "").split(),
        "os_name": release.get("PRETTY_NAME", release.get("ID", "unknown")),
    }


def dpkg_installed(status_path=DPKG_STATUS):
    """{package: [(architecture, version)]} of what dpkg has installed (Status: <want> ok installed,
    so held packages count), read from its status file, as apt's own check reads it."""
    found = {}
    for stanza in (read(status_path) or "").split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            key, sep, val = line.partition(":")
            if sep and not line[:1].isspace():
                fields[key] = val.strip()
        if fields.get("Status", "").split()[1:] == ["ok", "installed"] and "Package" in fields:
            found.setdefault(fields["Package"], []).append((fields.get("Architecture"), fields.get("Version")))
    return found


def missing_packages(wanted, status_path=DPKG_STATUS):
    """The entries of `wanted` (apt's name, name:arch, name=version) that dpkg does not have installed.
    An entry this cannot decide (a pattern, a .deb file, a version range) counts as missing: apt decides it."""
    installed = dpkg_installed(status_path) if wanted else {}
    missing = []
    for spec in wanted:
        name, _sep, version = spec.partition("=")
        name, _sep, arch = name.partition(":")
        undecided = not name or spec.endswith(".deb") or any(c in spec for c in "*?[]/<>")
        if undecided or not any(
            (not arch or arch in (have_arch, "any") or have_arch == "all") and (not version or version == have_version)
            for have_arch, have_version in installed.get(name, [])
        ):
            missing.append(spec)
    return missing


def missing_commands(names):
    """The commands of `names` that are not on PATH nor in the sbin directories."""
    path = os.pathsep.join([os.environ.get("PATH", "")] + list(SBIN_PATH))
    return [name for name in names if not shutil.which(name, path=path)]


def service_enabled(name, root="/"):
    """Whether `systemctl is-enabled name` would say enabled, from the files it reads: a unit file's
    symbolic link in a .wants/.requires directory of /etc/systemd/system, or for an init script
    without a unit file (Debian's o2cb) an S link in /etc/rc5.d or /etc/rcS.d, as
    systemd-sysv-install checks. False when unsure: the role's service task then asks systemd."""
    unit = name if "." in name else name + ".service"
    script = unit[: -len(".service")] if unit.endswith(".service") else None
    etc = os.path.join(root, "etc/systemd/system")
    etc_unit = os.path.join(etc, unit)
    if os.path.islink(etc_unit) and os.readlink(etc_unit) == "/dev/null":
        return False  # masked
    if any(os.path.lexists(os.path.join(root, d, unit)) for d in UNIT_DIRS):
        return any(
            os.path.lexists(link)
            for kind in ("wants", "requires")
            for link in glob.glob(os.path.join(glob.escape(etc), "*." + kind, glob.escape(unit)))
        )
    if script and os.path.isfile(os.path.join(root, "etc/init.d", script)):
        return bool(glob.glob(os.path.join(glob.escape(root), "etc", "rc[S5].d", "S[0-9][0-9]" + glob.escape(script))))
    return False


def service_state(runner, name, root="/"):
    """{active, enabled} of a service: enabled read from its links (service_enabled), active as
    `systemctl is-active` says. None without systemd: the service module then decides, with the
    host's init system."""
    if not os.path.isdir(os.path.join(root, "run/systemd/system")):
        return None
    active = run(runner, ["systemctl", "is-active", "--quiet", "--", name])["rc"] == 0
    return {"active": active, "enabled": service_enabled(name, root)}


def file_state(path):
    """What ansible.builtin.copy's owner/group/mode compare: type, mode, owner (lstat: a link is not the file)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return {"regular": stat.S_ISREG(st.st_mode), "mode": "%04o" % stat.S_IMODE(st.st_mode), "uid": st.st_uid,
            "gid": st.st_gid}  # fmt: skip


# --- ocfs2_cluster: its two files, the running o2cb (configfs), the OCFS2 mounts ----------------


def _number(text):
    return int(text) if text is not None and text.isdigit() else None


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def live_clusters(configfs):
    """The clusters the running o2cb has in configfs: nodes (number, address, port), the node it
    takes as itself (local_node), timeouts."""
    live = {}
    for cluster in _listdir(os.path.join(configfs, "cluster")):
        base = os.path.join(configfs, "cluster", cluster)
        nodes = {}
        local_node = None
        for node in _listdir(os.path.join(base, "node")):
            where = os.path.join(base, "node", node)
            nodes[node] = {
                "number": _number(read_value(os.path.join(where, "num"))),
                "address": read_value(os.path.join(where, "ipv4_address")),
                "port": _number(read_value(os.path.join(where, "ipv4_port"))),
            }
            if read_value(os.path.join(where, "local")) == "1":
                local_node = node
        timeouts = {
            key: _number(read_value(os.path.join(base, name)))
            for key, name in (
                ("heartbeat_threshold", "heartbeat/dead_threshold"),
                ("idle_timeout_ms", "idle_timeout_ms"),
                ("keepalive_delay_ms", "keepalive_delay_ms"),
                ("reconnect_delay_ms", "reconnect_delay_ms"),
            )
        }
        live[cluster] = {"nodes": nodes, "local_node": local_node, "timeouts": timeouts}
    return live


def ocfs2_mounts(mountinfo):
    """OCFS2 mounts: source, mount point, and cluster (false for a local mount, heartbeat=none)."""
    try:
        mounts = read_mountinfo(mountinfo)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [
        {
            "source": m.source,
            "mount_point": m.mount_point,
            "cluster": "heartbeat=none" not in m.super_options.split(","),
        }
        for m in mounts
        if m.fstype == "ocfs2"
    ]


def ocfs2(conf, defaults, configfs, mountinfo):
    return {
        "nodename": os.uname().nodename,  # o2cb takes it as the local node's name
        "conf_text": read(conf),
        "conf_file": file_state(conf),
        "defaults_text": read(defaults),
        "defaults_file": file_state(defaults),
        "missing_dirs": sorted({os.path.dirname(p) for p in (conf, defaults) if not os.path.isdir(os.path.dirname(p))}),
        "live": live_clusters(configfs),
        "mounts": ocfs2_mounts(mountinfo),
    }


# --- media_server: smb.conf, the share user and directory, the user's Samba password ------------


def _md4(data):
    """MD4 (RFC 1320), which hashlib lacks where OpenSSL 3 leaves it out: Samba's NT hash is MD4."""

    def rotl(x, n):
        x &= 0xFFFFFFFF
        return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF

    message = data + b"\x80" + b"\0" * ((55 - len(data)) % 64) + struct.pack("<Q", len(data) * 8)
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for chunk in range(0, len(message), 64):
        x = struct.unpack("<16I", message[chunk : chunk + 64])
        a, b, c, d = h
        for i in range(16):
            k, s = i, (3, 7, 11, 19)[i % 4]
            a, b, c, d = d, rotl(a + ((b & c) | (~b & d)) + x[k], s), b, c
        for i in range(16):
            k, s = (i % 4) * 4 + i // 4, (3, 5, 9, 13)[i % 4]
            a, b, c, d = d, rotl(a + ((b & c) | (b & d) | (c & d)) + x[k] + 0x5A827999, s), b, c
        for i in range(16):
            k, s = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)[i], (3, 9, 11, 15)[i % 4]
            a, b, c, d = d, rotl(a + (b ^ c ^ d) + x[k] + 0x6ED9EBA1, s), b, c
        h = [(v + n) & 0xFFFFFFFF for v, n in zip(h, (a, b, c, d))]
    return struct.pack("<4I", *h)


def nt_hash(password):
    """The NT hash Samba keeps of a password (MD4 of its UTF-16LE), as hex in capitals."""
    return _md4(password.encode("utf-16-le")).hex().upper()


def _testparm(runner, config, parameter, section=None):
    argv = ["testparm", "-s"] + (["--section-name=" + section] if section else [])
    found = run(runner, argv + ["--parameter-name=" + parameter, config])
    return {"rc": found["rc"], "stdout": found["stdout"]}


def passdb_file(runner, config):
    """The tdbsam file of config, or None for another passdb backend."""
    name, _colon, location = _testparm(runner, config, "passdb backend")["stdout"].strip().partition(":")
    if name.strip() != "tdbsam":
        return None
    if location.strip():
        return location.strip()
    return os.path.join(_testparm(runner, config, "private dir")["stdout"].strip(), "passdb.tdb")


def password_state(runner, config, user, password):
    """0: the password is the user's and the account is enabled; 1: not (or nothing yet)."""
    if not os.path.isfile(config):
        return 1
    tdb = passdb_file(runner, config)
    if tdb is not None and not os.path.isfile(tdb):
        return 1
    listed = run(runner, ["pdbedit", "-s", config, "-L", "-w", "-u", user])
    fields = listed["stdout"].strip().split(":")
    if listed["rc"] != 0 or len(fields) < 5 or fields[0] != user:
        return 1
    return 0 if fields[3].upper() == nt_hash(password) and "D" not in fields[4] else 1


def _name_of(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def user_state(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return {"shell": entry.pw_shell, "home": entry.pw_dir}


def directory_state(path):
    try:
        info = os.stat(path)
    except OSError:
        return None
    return {
        "isdir": os.path.isdir(path),
        "owner": _name_of(pwd.getpwuid, info.st_uid),
        "group": _name_of(grp.getgrgid, info.st_gid),
        "mode": info.st_mode & 0o7777,
    }


def ucf_md5(config, hashfile):
    text = read(hashfile) or ""
    found = re.search(r"^([0-9a-f]{32}) +" + re.escape(config) + "$", text, re.M)
    return found.group(1) if found else ""


def samba(runner, config, share, user, path, stock, hashfile, password, commands_missing):
    """smb.conf (base64, its md5, Debian's stock one and the md5 ucf recorded), what testparm reads
    back from it, the share user and directory, and whether the user's Samba password is the one
    given (null without the Samba commands)."""
    content = read(config, binary=True)
    state = {
        "config": None if content is None else base64.b64encode(content).decode("ascii"),
        "config_md5": None if content is None else hashlib.md5(content).hexdigest(),
        "config_dir": os.path.isdir(os.path.dirname(config)),
        "stock": None,
        "ucf_md5": "",
        "readback": None,
        "password": None,
        "password_error": "",
        "user": user_state(user),
        "directory": directory_state(path),
    }
    if content is not None:
        stock_content = read(stock, binary=True)
        state["stock"] = None if stock_content is None else base64.b64encode(stock_content).decode("ascii")
        state["ucf_md5"] = ucf_md5(config, hashfile)
    if not commands_missing:
        if content is not None:
            state["readback"] = [
                _testparm(runner, config, "server min protocol", "global"),
                _testparm(runner, config, "path", share),
            ]
        try:
            state["password"] = password_state(runner, config, user, password)
        except Exception as exc:  # only its type is said: never the password
            state["password"], state["password_error"] = 3, "cannot compare the Samba password: " + type(exc).__name__
    return state


# --- the module --------------------------------------------------------------------------------


def gather(module):
    """Everything the module's parameters ask, in one dict (the module's result)."""
    params, runner = module.params, Runner(module)
    result = os_release()
    result["missing_packages"] = missing_packages(params["packages"], params["dpkg_status"])
    result["missing_commands"] = missing_commands(params["commands"])
    result["service"] = service_state(runner, params["service"]) if params["service"] else None
    if params["ocfs2"]:
        result.update(ocfs2(**params["ocfs2"]))
    if params["gluster_pool"]:
        # A glusterd that does not answer must not hold the role's probe (and its fork) for good.
        result["pool"] = run(runner, ["gluster", "--mode=script", "--xml", "pool", "list"], timeout=POOL_TIMEOUT)
    if params["samba"]:
        result.update(samba(runner, commands_missing=bool(result["missing_commands"]), **params["samba"]))
    return result
