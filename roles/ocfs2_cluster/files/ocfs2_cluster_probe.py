# Run by the ocfs2_cluster role with python3 -c on each host: prints, as JSON, everything the role
# decides from, so that a run with nothing to do executes this probe alone on the host. Reads
# only; writes nothing, starts nothing, runs no other program, so check mode runs it too.
# Argument: one JSON object with
#   host, conf, defaults  inventory hostname, cluster.conf, /etc/default/o2cb
#   configfs, mountinfo   configfs root, mount table
#   packages, dpkg_status the packages the role installs, dpkg's status file
#   service               the o2cb service whose boot-time enablement is read, or ""
# Prints:
#   nodename   the kernel's host name (uname -n), which o2cb takes as the local node's name
#   debian     whether /etc/os-release says Debian (or a derivative); os_name its PRETTY_NAME
#   conf_text  cluster.conf, or null when there is none; conf_file its type, mode and owner
#   defaults_text  /etc/default/o2cb, or null; defaults_file likewise
#   missing_dirs   the directories of those two files that do not exist
#   live       the clusters the running o2cb has in configfs: nodes (number, address, port),
#              the node it takes as itself (local_node), timeouts
#   mounts     OCFS2 mounts (cluster: false for local mounts, heartbeat=none)
#   missing_commands  which of the ocfs2-tools commands the role runs are missing
#   missing_packages  which of the packages dpkg does not have installed
#   service_enabled   whether the service starts at boot (null when not asked)
#   systemd    whether systemd runs this host (/run/systemd/system, the test the service module makes)
import glob
import json
import os
import shutil
import stat
import sys

# Where systemd looks for unit files (generated ones excepted: systemd-sysv-generator makes one
# for every init script, enabled or not).
UNIT_DIRS = ("etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system", "lib/systemd/system",
             "usr/lib/systemd/system")  # fmt: skip


def read(path):
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def listdir(path):
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def value(path):
    text = read(path)
    return None if text is None else text.strip()


def number(text):
    return int(text) if text is not None and text.isdigit() else None


def unescape(field):
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def file_state(path):
    """What ansible.builtin.copy's owner/group/mode compare: type, mode, owner (lstat: a link is not the file)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return {"regular": stat.S_ISREG(st.st_mode), "mode": "%04o" % stat.S_IMODE(st.st_mode), "uid": st.st_uid,
            "gid": st.st_gid}  # fmt: skip


def dpkg_installed(status_path):
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


def missing_packages(wanted, status_path):
    """The entries of `wanted` (apt's name, name:arch, name=version) that dpkg does not have installed.
    An entry this cannot decide (a pattern, a .deb file, a version range) counts as missing: apt decides it."""
    installed = dpkg_installed(status_path)
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


def service_enabled(name, root="/"):
    """Whether `systemctl is-enabled name` would say enabled, from the files it reads: a unit file's
    symbolic link in a .wants/.requires directory of /etc/systemd/system, or for an init script
    without a unit file (Debian's o2cb) an S link in /etc/rc5.d or /etc/rcS.d, as
    systemd-sysv-install checks. False when unsure: the role's service task then asks systemd."""
    unit = name if "." in name else name + ".service"
    script = unit[: -len(".service")] if unit.endswith(".service") else None
    etc_unit = os.path.join(root, "etc/systemd/system", unit)
    if os.path.islink(etc_unit) and os.readlink(etc_unit) == "/dev/null":
        return False  # masked
    if any(os.path.lexists(os.path.join(root, d, unit)) for d in UNIT_DIRS):
        return any(
            os.path.lexists(link)
            for kind in ("wants", "requires")
            for link in glob.glob(os.path.join(glob.escape(os.path.join(root, "etc/systemd/system")), "*." + kind,
                                               glob.escape(unit)))  # fmt: skip
        )
    if script and os.path.isfile(os.path.join(root, "etc/init.d", script)):
        pattern = os.path.join(glob.escape(root), "etc", "rc[S5].d", "S[0-9][0-9]" + glob.escape(script))
        return bool(glob.glob(pattern))
    return False


def live_clusters(configfs):
    live = {}
    for cluster in listdir(os.path.join(configfs, "cluster")):
        base = os.path.join(configfs, "cluster", cluster)
        nodes = {}
        local_node = None
        for node in listdir(os.path.join(base, "node")):
            where = os.path.join(base, "node", node)
            nodes[node] = {
                "number": number(value(os.path.join(where, "num"))),
                "address": value(os.path.join(where, "ipv4_address")),
                "port": number(value(os.path.join(where, "ipv4_port"))),
            }
            if value(os.path.join(where, "local")) == "1":
                local_node = node
        timeouts = {
            k: number(value(os.path.join(base, f)))
            for k, f in (
                ("heartbeat_threshold", "heartbeat/dead_threshold"),
                ("idle_timeout_ms", "idle_timeout_ms"),
                ("keepalive_delay_ms", "keepalive_delay_ms"),
                ("reconnect_delay_ms", "reconnect_delay_ms"),
            )
        }
        live[cluster] = {"nodes": nodes, "local_node": local_node, "timeouts": timeouts}
    return live


def ocfs2_mounts(mountinfo):
    mounts = []
    for line in (read(mountinfo) or "").splitlines():
        left, _sep, right = line.partition(" - ")
        fields = right.split()
        if len(fields) >= 2 and fields[0] == "ocfs2":
            options = fields[2].split(",") if len(fields) > 2 else []
            mounts.append(
                {
                    "source": unescape(fields[1]),
                    "mount_point": unescape(left.split()[4]),
                    "cluster": "heartbeat=none" not in options,
                }
            )
    return mounts


def main(args):
    release = {}
    for line in (read("/etc/os-release") or "").splitlines():
        key, sep, val = line.partition("=")
        if sep:
            release[key.strip()] = val.strip().strip("\"'")
    conf_path, defaults_path = args["conf"], args["defaults"]
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    return {
        "host": args["host"],
        "nodename": os.uname().nodename,
        "debian": "debian" in [release.get("ID", "")] + release.get("ID_LIKE", "").split(),
        "os_name": release.get("PRETTY_NAME", release.get("ID", "unknown")),
        "conf_text": read(conf_path),
        "conf_file": file_state(conf_path),
        "missing_dirs": sorted(
            {os.path.dirname(p) for p in (conf_path, defaults_path) if not os.path.isdir(os.path.dirname(p))}
        ),
        "defaults_text": read(defaults_path),
        "defaults_file": file_state(defaults_path),
        "live": live_clusters(args["configfs"]),
        "mounts": ocfs2_mounts(args["mountinfo"]),
        "missing_commands": [c for c in ("o2cb", "mounted.ocfs2") if not shutil.which(c, path=path)],
        "missing_packages": missing_packages(args.get("packages") or [], args.get("dpkg_status", "/var/lib/dpkg/status")),
        "service_enabled": service_enabled(args["service"]) if args.get("service") else None,
        "systemd": os.path.isdir("/run/systemd/system"),
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
