# Run by the gluster_cluster role with /usr/bin/python3 -c, once per member and run: everything a
# run that changes nothing needs to know, read in one remote execution. Read-only (it also runs in
# check mode). Argument: JSON {"packages": [...], "service": "glusterd" or ""}. Prints JSON:
#   missing: the packages of the list not installed ("install ok installed" in dpkg's status),
#   service: {active, enabled} of the service (null when not asked, or without systemd),
#   pool: {rc, stdout, stderr} of `gluster --mode=script --xml pool list`.
import json
import os
import re
import subprocess
import sys

DPKG_STATUS = "/var/lib/dpkg/status"
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


def run(argv):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    except OSError as exc:
        return {"rc": 127, "stdout": "", "stderr": "%s: %s" % (argv[0], exc.strerror)}
    except subprocess.TimeoutExpired:
        return {"rc": 124, "stdout": "", "stderr": "%s: no answer in 300 s" % " ".join(argv)}
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def service_state(name):
    """{active, enabled} as systemd says; None when not asked, or without systemd (the service
    module then decides, with the host's init system)."""
    if not name or not os.path.isdir("/run/systemd/system"):
        return None
    active = run(["systemctl", "is-active", "--quiet", "--", name])["rc"] == 0
    enabled = run(["systemctl", "is-enabled", "--quiet", "--", name])["rc"] == 0
    return {"active": active, "enabled": enabled}


request = json.loads(sys.argv[1])
print(
    json.dumps(
        {
            "missing": missing_packages(request.get("packages") or []),
            "service": service_state(request.get("service")),
            "pool": run(["gluster", "--mode=script", "--xml", "pool", "list"]),
        }
    )
)
