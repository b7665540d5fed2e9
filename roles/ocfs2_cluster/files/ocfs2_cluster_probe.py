# Run by the ocfs2_cluster role with python3 -c on each host: prints, as JSON, what the role
# decides from. Reads only; writes nothing, starts nothing, so check mode runs it too.
# Arguments: inventory hostname, cluster.conf, /etc/default/o2cb, configfs root, mountinfo file.
#   nodename   the kernel's host name (uname -n), which o2cb takes as the local node's name
#   debian     whether /etc/os-release says Debian (or a derivative); os_name its PRETTY_NAME
#   conf_text  cluster.conf, or null when there is none
#   defaults_text  /etc/default/o2cb, or null
#   missing_dirs   the directories of those two files that do not exist
#   live       the clusters the running o2cb has in configfs: nodes (number, address, port),
#              the node it takes as itself (local_node), timeouts
#   mounts     OCFS2 mounts (cluster: false for local mounts, heartbeat=none)
#   missing_commands  which of the ocfs2-tools commands the role runs are missing
import json
import os
import shutil
import sys

host, conf_path, defaults_path, configfs, mountinfo = sys.argv[1:6]


def read(path):
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except FileNotFoundError:
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

release = {}
for line in (read("/etc/os-release") or "").splitlines():
    key, sep, val = line.partition("=")
    if sep:
        release[key.strip()] = val.strip().strip("\"'")

path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
print(
    json.dumps(
        {
            "host": host,
            "nodename": os.uname().nodename,
            "debian": "debian" in [release.get("ID", "")] + release.get("ID_LIKE", "").split(),
            "os_name": release.get("PRETTY_NAME", release.get("ID", "unknown")),
            "conf_text": read(conf_path),
            "missing_dirs": sorted(
                {os.path.dirname(p) for p in (conf_path, defaults_path) if not os.path.isdir(os.path.dirname(p))}
            ),
            "defaults_text": read(defaults_path),
            "live": live,
            "mounts": mounts,
            "missing_commands": [c for c in ("o2cb", "mounted.ocfs2") if not shutil.which(c, path=path)],
        }
    )
)
