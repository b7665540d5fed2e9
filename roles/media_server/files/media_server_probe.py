# Run by the media_server role with /usr/bin/python3 -c: everything a run that changes nothing
# needs to know, read in one remote execution. Read-only (it also runs in check mode): a passdb
# that does not exist is not opened (pdbedit would create it). Standard input: JSON of the
# request (below), the Samba password included; the password and its hash never leave this
# process, and errors name only an exception's type. Prints JSON:
#   os_release: /etc/os-release;
#   missing_packages: the packages of the list not installed ("install ok installed" in dpkg's
#     status); missing_commands: the commands not found on PATH nor in the sbin directories;
#   config: smb.conf (base64; null when there is none), config_dir: whether its directory
#     exists, stock: Debian's stock smb.conf (base64 or null), ucf_md5: the md5 that ucf recorded
#     for smb.conf ("" when none);
#   readback: [server min protocol of [global], path of the share] as testparm reads them from
#     smb.conf, each {rc, stdout} (null without testparm or smb.conf);
#   password: 0 when the user's Samba password in the passdb of smb.conf is the one given and
#     the account is enabled, 1 when not (or no user, passdb or smb.conf yet), 3 on error, null
#     without the Samba commands; password_error: the error;
#   user: the user's {shell, home} (null: no such user); directory: the share directory's
#     {isdir, owner, group, mode} (null: nothing there);
#   service: the service's {active, enabled} (null when not asked, or without systemd).
import base64
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys

ENV = dict(os.environ, LC_ALL="C")
DPKG_STATUS = "/var/lib/dpkg/status"
SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
)
# name[:arch][=version], as apt takes them; anything else (a glob, a comparison, a .deb) is
# reported missing, and apt decides.
PACKAGE_RE = re.compile(r"^([a-z0-9][a-z0-9+.-]*)(?::([a-z0-9-]+))?(?:=([^*?\[<>=]+))?$")


def installed_packages(path=DPKG_STATUS):
    """[(package, architecture, version)] of every package dpkg has installed."""
    found = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return found
    for paragraph in text.split("\n\n"):
        fields = {}
        for line in paragraph.splitlines():
            if line[:1] not in ("", " ", "\t") and ":" in line:
                key, _colon, value = line.partition(":")
                fields[key] = value.strip()
        if fields.get("Status") == "install ok installed" and "Package" in fields:
            found.append((fields["Package"], fields.get("Architecture", ""), fields.get("Version", "")))
    return found


def missing_packages(names, path=DPKG_STATUS):
    installed = installed_packages(path)
    missing = []
    for name in names:
        match = PACKAGE_RE.match(name)
        if not match or not any(
            package == match.group(1)
            and (match.group(2) is None or match.group(2) == arch or arch == "all")
            and match.group(3) in (None, version)
            for package, arch, version in installed
        ):
            missing.append(name)
    return missing


def read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def b64(data):
    return None if data is None else base64.b64encode(data).decode("ascii")


def output(argv):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, check=False, text=True)
    except OSError:
        return 127, ""
    return proc.returncode, proc.stdout


def ucf_md5(config, hashfile):
    text = (read_bytes(hashfile) or b"").decode("utf-8", "replace")
    found = re.search(r"^([0-9a-f]{32}) +" + re.escape(config) + "$", text, re.M)
    return found.group(1) if found else ""


def passdb_file(config):
    """The tdbsam file of config, or None for another passdb backend."""
    _rc, backend = output(["testparm", "-s", "--parameter-name=passdb backend", config])
    name, _colon, location = backend.strip().partition(":")
    if name.strip() != "tdbsam":
        return None
    if location.strip():
        return location.strip()
    _rc, private_dir = output(["testparm", "-s", "--parameter-name=private dir", config])
    return os.path.join(private_dir.strip(), "passdb.tdb")


def password_state(config, user, password):
    """0: the password is the user's and the account is enabled; 1: not (or nothing yet)."""
    from samba.credentials import Credentials

    if not os.path.isfile(config):
        return 1
    tdb = passdb_file(config)
    if tdb is not None and not os.path.isfile(tdb):
        return 1
    rc, listed = output(["pdbedit", "-s", config, "-L", "-w", "-u", user])
    fields = listed.strip().split(":")
    if rc != 0 or len(fields) < 5 or fields[0] != user:
        return 1
    credentials = Credentials()
    credentials.set_password(password)
    matches = fields[3].upper() == credentials.get_nt_hash().hex().upper()
    return 0 if matches and "D" not in fields[4] else 1


def user_state(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return {"shell": entry.pw_shell, "home": entry.pw_dir}


def name_of(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def directory_state(path):
    try:
        info = os.stat(path)
    except OSError:
        return None
    return {
        "isdir": os.path.isdir(path),
        "owner": name_of(pwd.getpwuid, info.st_uid),
        "group": name_of(grp.getgrgid, info.st_gid),
        "mode": info.st_mode & 0o7777,
    }


def service_state(name):
    """{active, enabled} as systemd says; None when not asked, or without systemd (the service
    module then decides, with the host's init system)."""
    if not name or not os.path.isdir("/run/systemd/system"):
        return None
    active = output(["systemctl", "is-active", "--quiet", "--", name])[0] == 0
    enabled = output(["systemctl", "is-enabled", "--quiet", "--", name])[0] == 0
    return {"active": active, "enabled": enabled}


def main():
    request = json.loads(sys.stdin.read())
    config = request["config"]
    missing_commands = [name for name in request["commands"] if not shutil.which(name, path=SEARCH_PATH)]
    content = read_bytes(config)
    state = {
        "os_release": (read_bytes("/etc/os-release") or b"").decode("utf-8", "replace"),
        "missing_packages": missing_packages(request["packages"]),
        "missing_commands": missing_commands,
        "config": b64(content),
        "config_md5": None if content is None else hashlib.md5(content).hexdigest(),
        "config_dir": os.path.isdir(os.path.dirname(config)),
        "stock": b64(read_bytes(request["stock"])) if content is not None else None,
        "ucf_md5": ucf_md5(config, request["hashfile"]) if content is not None else "",
        "readback": None,
        "password": None,
        "password_error": "",
        "user": user_state(request["user"]),
        "directory": directory_state(request["path"]),
        "service": service_state(request["service"]),
    }
    if not missing_commands:
        if content is not None:
            state["readback"] = [
                dict(
                    zip(
                        ("rc", "stdout"),
                        output(
                            ["testparm", "-s", "--section-name=" + section, "--parameter-name=" + parameter, config]
                        ),
                    )
                )
                for section, parameter in (("global", "server min protocol"), (request["share"], "path"))
            ]
        try:
            state["password"] = password_state(config, request["user"], request["password"])
        except Exception as exc:  # only its type is said: never the password
            state["password"], state["password_error"] = 3, "cannot compare the Samba password: " + type(exc).__name__
    print(json.dumps(state))


try:
    main()
except Exception as exc:  # no traceback: say what failed, in one line
    sys.stderr.write("%s: %s\n" % (type(exc).__name__, exc))
    sys.exit(3)
