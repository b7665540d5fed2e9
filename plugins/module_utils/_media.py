# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Media storages: CIFS shares of ISO images and FVM exports. Private to the collection.

The password lives only in a root-owned 0600 credentials file that fstab names with
``credentials=``; it is never in argv, fstab, the registry or a result. Before anything is
written or mounted, the server and the credentials are checked with smbclient under a
timeout. A share served by this very host is bind-mounted from its directory instead of
CIFS over loopback.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import stat
import tempfile
import time

from ._errors import StorageError
from ._fileio import atomic_write, read_text
from ._mounts import mounted_at
from ._probe import statfs_errno
from ._qemu import CANDIDATES
from ._validate import check_name, check_path, check_port
from ._volumes import (
    MountSpec,
    answer_problem,
    check_answered,
    check_responsive,
    mounted_spec,
    on_network_fs,
    plan_mount,
    plan_umount,
    probe,
    same_source,
    spec_from_record,
)

DEFAULT_ROOT = "/var/lib/flexvdi/media"
MEDIA_SUFFIXES = {".iso": "iso", ".fvm": "fvm"}
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
SHARE_RE = re.compile(r"^[^/\\\0\n]{1,80}$")
SMB1 = ("1", "1.0", "nt1", "smb1")
CHECK_TIMEOUT = 10  # smbclient's own -t does not bound connect or negotiate (measured: 20 s)


def check_server(server):
    """An IP address or a DNS hostname; anything else is refused with the option's name."""
    try:
        return str(ipaddress.ip_address(server))
    except ValueError:
        pass
    if not HOSTNAME_RE.match(server or ""):
        raise StorageError("server %r is neither an IP address nor a valid hostname: fix server" % (server,))
    return server


def check_vers(vers):
    if vers.lower() in SMB1:
        raise StorageError(
            "vers %s is SMB1, which is refused: it is insecure and disabled by default in Samba and "
            "Windows; set vers to 2.1, 3.0, 3.02 or 3.1.1 and enable SMB2+ on the server" % vers
        )
    if not re.match(r"^(2\.0|2\.1|3|3\.0|3\.02|3\.1\.1|default)$", vers):
        raise StorageError("vers %s is not an SMB dialect mount.cifs knows: use 2.1, 3.0, 3.02 or 3.1.1" % vers)
    return vers


def is_local(server):
    """Whether ``server`` resolves to an address of this host (bind() succeeds only on local ones)."""
    try:
        infos = socket.getaddrinfo(server, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    for family, _type, _proto, _name, address in infos:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((address[0], 0) if family == socket.AF_INET else (address[0], 0, 0, address[3]))
                return True
            except OSError:
                continue
    return False


def credentials_text(username, password, domain):
    """The credentials file mount.cifs reads (and smbclient -A): one key=value a line."""
    for value, option in ((username, "username"), (password, "password"), (domain, "domain")):
        if value is not None and ("\n" in value or "\0" in value):
            raise StorageError("%s must not contain a newline" % option)
    lines = ["username=%s" % username, "password=%s" % (password or "")]
    if domain:
        lines.append("domain=%s" % domain)
    return "\n".join(lines) + "\n"


def cifs_options(record, credentials, user, read_only):
    opts = ["credentials=%s" % credentials, "vers=%s" % record["vers"]]
    if record.get("port", 445) != 445:
        opts.append("port=%d" % record["port"])
    if user is not None:
        opts += ["uid=%d" % user.uid, "gid=%d" % user.gid]
    opts += ["file_mode=0640", "dir_mode=0750", "ro" if read_only else "rw", "_netdev", "nofail"]
    return opts


def share_path(config_path, share):
    """The directory of ``share`` in a Samba config (case-insensitive, ; and # comments)."""
    text = read_text(config_path, default="")
    section, found = None, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        if section == share.lower() and "=" in line:
            key, value = line.split("=", 1)
            if key.strip().lower() == "path":
                found = value.strip()
    if not found:
        raise StorageError(
            "the server is this host, but share %s has no path in %s: serve it with the media_server role, "
            "or fix share or samba_config" % (share, config_path)
        )
    return found


SAMBA_CONFIG = "/etc/samba/smb.conf"
ROLE_MARKER = "flexvdi.storage.media_server"  # the media_server role's BEGIN/END lines in smb.conf


def served_shares(config_path):
    """The shares the media_server role wrote in a Samba config, with who may connect to each.

    [{share, path, hosts_allow}], ``hosts_allow`` ['*'] when the share has none (every address may);
    empty when the file or the role's lines are not there.
    """
    text = read_text(config_path, default="")
    inside, section, found = False, None, []
    for raw in text.splitlines():
        line = raw.strip()
        if line == "# BEGIN " + ROLE_MARKER:
            inside = True
            continue
        if line == "# END " + ROLE_MARKER:
            inside = False
            continue
        if not inside or not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            if section.lower() != "global":
                found.append({"share": section, "path": None, "hosts_allow": ["*"]})
            continue
        if found and section == found[-1]["share"] and "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            key = " ".join(key.lower().split())
            if key == "path":
                found[-1]["path"] = value
            elif key in ("hosts allow", "allow hosts"):
                found[-1]["hosts_allow"] = [v for v in re.split(r"[\s,]+", value) if v] or ["*"]
    return found


def files(path):
    """ISO images and FVM exports below ``path``: name (relative), type, size, mtime; sorted."""
    found = []
    stack = [("", path)]
    while stack:
        prefix, directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((prefix + entry.name + "/", entry.path))
                    continue
                kind = MEDIA_SUFFIXES.get(os.path.splitext(entry.name)[1].lower())
                if kind is None:
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found.append({"name": prefix + entry.name, "type": kind, "size": st.st_size, "mtime": int(st.st_mtime)})
    return sorted(found, key=lambda item: item["name"])


# How many files a media storage's status lists unless list_all_files is set. AWX blanks an
# event result over 700,000 bytes (MAX_EVENT_RES); a listed file takes about 75 bytes, so a
# share of 10,000 ISO images listed in full would not fit, while 100 take about 8 kB.
FILES_SHOWN = 100


def summarize(found, list_all=False):
    """The status fields of a file listing: count, total size, and the first FILES_SHOWN by name (all if list_all)."""
    shown = found if list_all else found[:FILES_SHOWN]
    return {
        "files": shown,
        "files_count": len(found),
        "files_size": sum(item["size"] for item in found),
        "files_truncated": len(shown) < len(found),
    }


def check_share(host, record, password, what):
    """Ask the server, as the user, to list the share: a clear error in seconds, or nothing.

    The password goes to smbclient in a private 0600 file that is removed right after,
    never in argv or the environment.
    """
    proto = "SMB3" if record["vers"].startswith("3") or record["vers"] == "default" else "SMB2"
    fd, auth = tempfile.mkstemp(prefix="flexvdi-auth-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(credentials_text(record["username"], password, record.get("domain")))
        argv = [
            "timeout",
            "-k",
            "2",
            str(CHECK_TIMEOUT),
            "smbclient",
            "//%s/%s" % (record["server"], record["share"]),
            "-A",
            auth,
            "-p",
            str(record.get("port", 445)),
            "-m",
            proto,
            "--option=client min protocol=SMB2_02",
            "-t",
            str(CHECK_TIMEOUT),
            "-c",
            "ls",
        ]
        started = time.monotonic()
        rc, out, err = host.runner.run(argv, what, check=False)
        elapsed = time.monotonic() - started
    finally:
        os.unlink(auth)
    if rc == 0:
        return
    text = (err or "") + (out or "")
    server, share = record["server"], record["share"]
    causes = (
        (
            "NT_STATUS_LOGON_FAILURE",
            "the server refused username %s with this password: fix username or password" % record["username"],
        ),
        (
            "NT_STATUS_ACCESS_DENIED",
            "user %s may not open share %s: grant access on the server or fix username" % (record["username"], share),
        ),
        ("NT_STATUS_BAD_NETWORK_NAME", "server %s has no share %s: fix share" % (server, share)),
        (
            "NT_STATUS_CONNECTION_REFUSED",
            "server %s refuses connections on port %s: start Samba there or fix server"
            % (server, record.get("port", 445)),
        ),
        ("NT_STATUS_HOST_UNREACHABLE", "server %s is unreachable: fix server or the network" % server),
        ("NT_STATUS_NETWORK_UNREACHABLE", "server %s is unreachable: fix server or the network" % server),
        (
            "NT_STATUS_IO_TIMEOUT",
            "server %s did not answer in %ds: fix server or the network" % (server, CHECK_TIMEOUT),
        ),
        ("NT_STATUS_INVALID_NETWORK_RESPONSE", "server %s does not speak SMB2 or newer: enable SMB2+ on it" % server),
        (
            "NT_STATUS_CONNECTION_DISCONNECTED",
            "server %s dropped the connection (SMB1-only server?): enable SMB2+ on it" % server,
        ),
        ("NT_STATUS_UNSUCCESSFUL", "server %s cannot be resolved or reached: fix server" % server),
        ("Connection to", "server %s does not answer: fix server, or start Samba there" % server),
    )
    cause = next((reason for marker, reason in causes if marker in text), None)
    if cause is None:
        if rc in (124, 137):
            cause = "server %s did not answer in %ds: fix server or the network" % (server, CHECK_TIMEOUT)
        else:
            lines = [line for line in text.strip().splitlines() if line.strip()]
            cause = "smbclient failed (rc=%d): %s" % (rc, lines[-1] if lines else "no output")
    raise StorageError(
        "%s: checking //%s/%s before mounting (%.1fs): %s. Nothing was written or mounted"
        % (what, server, share, elapsed, cause)
    )


def converge(host):
    p = host.params
    name = p["name"]
    check_name(name, "name")
    what = "media storage %s" % name
    hosts = host.hosts(what)
    member = p["state"] == "present" and host.hostname in hosts
    if member:
        check_port(p["port"], what)
        server = check_server(p["server"])
        if not SHARE_RE.match(p["share"] or ""):
            raise StorageError("%s: share %r is not a share name (no slashes): fix share" % (what, p["share"]))
        check_vers(p["vers"])
        if not p["username"]:
            raise StorageError("%s: username is required to mount a CIFS share: set username" % what)
    wanted = p["mount_point"] or os.path.join(DEFAULT_ROOT, name)
    mount_point = check_path(wanted, what, resolve=not on_network_fs(host, wanted))
    credentials = os.path.join(os.path.dirname(os.path.abspath(host.registry.path)), "credentials", name + ".cred")

    def edit(before, after, plan):
        storages = after["media_storages"]
        existing = storages.get(name)
        if p["state"] == "present":
            host.check_host_set(what, existing)
        if member:
            _conflicts(before, name, mount_point, what)
            record = _plan_present(host, plan, existing, server, mount_point, credentials, hosts, what)
            if plan.changed or existing is None:
                if plan.changed:
                    verb = "mounted" if record["transport"] == "cifs" else "bind-mounted"
                    message = "%s %s on %s" % (verb, _source(record), mount_point)
                else:
                    message = "registered %s, already mounted on %s" % (_source(record), mount_point)
                record["last_operation"] = {
                    "message": message,
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            else:
                record["last_operation"] = existing.get("last_operation")
            storages[name] = record
        elif existing is not None:
            _plan_removal(host, plan, existing, what, p["force"])
            del storages[name]

    result, after = host.transaction(edit)
    host.forget_mounts()
    record = after["media_storages"].get(name)
    result["media_storage"] = (
        status(host, name, record) if record else {"name": name, "status": "absent", "hosts": hosts}
    )
    check_answered(result["media_storage"], what, result)
    return result


def _source(record):
    if record["transport"] == "local":
        return record["local_path"] or "the directory of share %s" % record["share"]
    return "//%s/%s" % (record["server"], record["share"])


def _conflicts(data, name, mount_point, what):
    for other, record in data["media_storages"].items():
        if other != name and record.get("mount_point") == mount_point:
            raise StorageError(
                "%s: mount_point %s is already media storage %s: choose another" % (what, mount_point, other)
            )


def _plan_present(host, plan, existing, server, mount_point, credentials, hosts, what):
    p = host.params
    record = {
        "server": server,
        "share": p["share"],
        "hosts": hosts,
        "mount_point": mount_point,
        "vers": p["vers"],
        "port": p["port"],
        "read_only": p["read_only"],
        "username": p["username"],
        "domain": p["domain"],
    }
    current = mounted_at(host.mounts, mount_point)
    if current is not None:
        check_responsive(host, mount_point, what)
    if is_local(server):
        try:
            local_path = share_path(p["samba_config"], p["share"])
            if not os.path.isdir(local_path):
                raise StorageError(
                    "%s: the share's directory %s does not exist on this host: fix the Samba share" % (what, local_path)
                )
        except StorageError as exc:
            if not host.check_mode:
                raise
            # A fresh host in check mode: the media_server role has not written smb.conf yet.
            plan.warnings.append(
                "check mode: %s (the media_server role writes it in a real run); the share's directory was not "
                "checked. A real run bind-mounts it on %s" % (exc.msg, mount_point)
            )
            record.update(transport="local", local_path=None, credentials=None, src=None)
            plan.add("bind-mount the directory of share %s on %s" % (p["share"], mount_point), None)
            return record
        record.update(transport="local", local_path=local_path, credentials=None)
        spec = MountSpec(local_path, "bind", "none", ["bind", "ro" if p["read_only"] else "rw", "nofail"])
        remount = current is not None and not same_source(spec, current, mount_point)
        creds_changed, previous = False, ""
        _plan_drop_credentials(plan, existing)
    else:
        user = host.qemu_user(required=False)
        if user is None:
            plan.warnings.append(
                "%s: no qemu user on this host (tried %s): the share is mounted for root only and guests will not "
                "read its ISO images; install the hypervisor first, or set qemu_user" % (what, ", ".join(CANDIDATES))
            )
        record.update(transport="cifs", local_path=None, credentials=credentials)
        spec = MountSpec(
            "//%s/%s" % (server, p["share"]), "network", "cifs", cifs_options(record, credentials, user, p["read_only"])
        )
        wanted = credentials_text(p["username"], p["password"], p["domain"])
        previous = read_text(credentials, default="")
        creds_changed = previous != wanted
        entry = host.fstab.find(mount_point)
        remount = current is not None and (
            not same_source(spec, current, mount_point)
            or creds_changed
            or entry is None
            or entry.mntops != spec.options
        )
        if (current is None or remount) and _require_cifs_tools(host, plan, what):
            check_share(host, record, p["password"], what)
    record.update(fstype=spec.fstype, opts=spec.options, kind=spec.kind, src=spec.src)
    if current is not None and remount:
        # Undone by mounting the old source again, after the old credentials are back.
        plan_umount(
            host,
            plan,
            mount_point,
            "%s, to mount it anew" % what,
            p["force"],
            remount=mounted_spec(existing, current),
            images=False,
        )
    if creds_changed:
        plan.mkdirs(os.path.dirname(credentials), mode=0o700)
        plan.add(
            "write credentials file %s (0600, root)" % credentials,
            lambda: atomic_write(credentials, wanted, mode=0o600, owner=(0, 0)),
            lambda: (
                atomic_write(credentials, previous, mode=0o600, owner=(0, 0)) if previous else os.unlink(credentials)
            ),
        )
    plan.mkdirs(mount_point)
    host.fstab.set(spec.entry(mount_point))
    host.plan_fstab(plan)
    if current is None or remount:
        plan_mount(host, plan, spec, mount_point, what)
    return record


def _require_cifs_tools(host, plan, what):
    """smbclient (the credentials check) and mount.cifs must be there; check mode says what it skips.

    Returns whether the credentials can be checked now.
    """
    missing = [tool for tool in ("smbclient", "mount.cifs") if not host.runner.has(tool)]
    if not missing:
        return True
    if host.check_mode:
        plan.warnings.append(
            "check mode: %s not installed yet (the flexvdi.storage.cifs_client role installs them in a real run), "
            "so %s's server and credentials were not checked; a real run checks them with smbclient before it "
            "writes or mounts anything" % (" and ".join(missing) + (" is" if len(missing) == 1 else " are"), what)
        )
        return False
    raise StorageError(
        "%s: %s not installed on this host: run the flexvdi.storage.cifs_client role first (or install "
        "cifs-utils and smbclient). Nothing was written or mounted"
        % (what, " and ".join(missing) + (" is" if len(missing) == 1 else " are"))
    )


def _plan_drop_credentials(plan, record):
    """Remove the credentials file a record names (a storage removed, or now served locally)."""
    credentials = (record or {}).get("credentials")
    if not credentials or not os.path.exists(credentials):
        return
    previous = read_text(credentials)
    plan.add(
        "remove credentials file %s" % credentials,
        lambda: os.unlink(credentials),
        lambda: atomic_write(credentials, previous, mode=0o600, owner=(0, 0)),
    )


def _plan_removal(host, plan, record, what, force):
    mount_point = record["mount_point"]
    current = mounted_at(host.mounts, mount_point)
    spec = spec_from_record(record)
    # Only what is ours is unmounted: something else mounted there is left alone.
    if current is not None and spec is not None and same_source(spec, current, mount_point):
        check_responsive(host, mount_point, what)
        plan_umount(host, plan, mount_point, what, force, remount=spec, images=False)
    entry = host.fstab.find(mount_point)
    if entry is not None and entry.spec == record.get("src"):
        host.fstab.remove(mount_point)
    _plan_drop_credentials(plan, record)


def status(host, name, record):
    mount_point = record["mount_point"]
    current = mounted_at(host.mounts, mount_point)
    spec = spec_from_record(record)
    info = {
        "name": name,
        "server": record["server"],
        "share": record["share"],
        "hosts": record["hosts"],
        "mount_point": mount_point,
        "transport": record["transport"],
        "read_only": record["read_only"],
        "mounted": current is not None,
        "in_fstab": host.fstab.find(mount_point) is not None,
        "status": "online",
        "message": "",
        "last_operation": record.get("last_operation"),
        "files": [],
        "files_count": 0,
        "files_size": 0,
        "files_truncated": False,
    }
    if spec is None or not same_source(spec, current, mount_point):
        info.update(status="offline", message="%s is not mounted from %s" % (mount_point, record.get("src")))
        return info
    # Summarized in the child: only what is returned crosses the pipe.
    list_all = bool(host.params.get("list_all_files"))
    found, problem = probe(host, mount_point, _listing, mount_point, list_all)
    if problem is None and isinstance(found, int):
        problem = answer_problem(host, mount_point, found)
        found = os.strerror(found)
    if problem:
        info.update(status="unresponsive", message=problem)
    elif isinstance(found, str):
        info.update(status="error", message="%s cannot be read: %s" % (mount_point, found))
    else:
        info.update(found)
    return info


def _listing(path, list_all=False):
    """The summarized media files below ``path``, or why its top cannot be read.

    First statvfs, which the server must answer (a listing may come from the client's
    cache): its errno (an int) when it fails; then a str when the directory cannot be listed.
    """
    code = statfs_errno(path)
    if code:
        return code
    try:
        os.listdir(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    return summarize(files(path), list_all)
