# Run by the cifs_client role with python3 -c on each host: prints, as JSON, everything the role
# decides from, so that a run with nothing to do executes this probe alone on the host. Reads
# only; writes nothing, runs no other program, so check mode runs it too.
# Argument: one JSON object with
#   packages, dpkg_status  the packages the role installs, dpkg's status file
#   commands               the commands those packages bring that media_storage runs
# Prints:
#   os_release        /etc/os-release ("" when there is none)
#   missing_packages  which of the packages dpkg does not have installed
#   missing_commands  which of the commands are not on PATH nor in the sbin directories
import json
import os
import shutil
import sys


def read(path):
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


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


def main(args):
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
                            "/sbin", "/bin"])  # fmt: skip
    return {
        "os_release": read("/etc/os-release") or "",
        "missing_packages": missing_packages(args.get("packages") or [], args.get("dpkg_status", "/var/lib/dpkg/status")),
        "missing_commands": [c for c in args.get("commands") or [] if not shutil.which(c, path=path)],
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
