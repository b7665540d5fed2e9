#!/usr/bin/env python3
"""No-op run of the storage role over N simulated hosts, against a one-task ping play over the same hosts.

N inventory hosts (host0..hostN-1), all `ansible_connection: local`, each with its own registry
and fstab (the role's storage_registry and storage_fstab, as host variables) under a temp dir,
and one image storage (hosts: [that host]) with one external volume, a directory made by the
benchmark (no src, so nothing is mounted). The role converges them
once (warm-up), then, alternating so that drift hits all alike, --repeat times each:
  role  - hosts: all, gather_facts: false, roles: [flexvdi.storage.storage] (must report
          changed=0 on every host, or the run is an error: it would time the wrong thing)
  ping  - hosts: all, one ansible.builtin.ping task (one module execution per host)
  stock - the same work in stock modules, per host: file (image storage root), file (mount
          point), stat (mount point): a second baseline
Each run is measured twice: its wall time, and its CPU time (user + system of ansible-playbook
and every process it started and reaped: workers, module runs; getrusage(RUSAGE_CHILDREN)
before and after). On a machine that other jobs load, wall time grows with their load while CPU
time stays the work of the run itself: the CPU ratio is the steadier one. It prints the median
of each, and the ratios role/ping and role/stock of this run in both; the goal of issue 17
(role at most 1.5x ping at 50 hosts, forks 5) is printed beside them. The exit code is non-zero
only on errors (a failed run, a run that changed something), never because of a ratio.

Usage: run `make setup` first, then
    .venv/newest/bin/python benchmarks/hosts_noop.py [--hosts 50] [--forks 5] [--repeat 3] [--no-stock]
`make setup` builds .venv/newest (ansible-core 2.21 with the ansible package, so ansible.posix
too) and links .cache/collections to this tree, so that the repository's ansible.cfg resolves
flexvdi.storage.storage to the code checked out here. Run it with .venv/newest/bin/python: it
uses the ansible-playbook next to that Python and gives the hosts that Python as their
interpreter. Root is not needed: nothing is mounted.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
GOAL = 1.5  # issue 17: the role's no-op run at most 1.5x the ping play (50 hosts, forks 5)
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class BenchError(Exception):
    """A run failed or did not do what the benchmark means to time."""


def inventory(base, n):
    """One host per image storage; every path of a host under base/<host>/."""
    hosts = {}
    for i in range(n):
        name = "host%d" % i
        home = os.path.join(base, name)
        os.makedirs(os.path.join(home, "etc"), exist_ok=True)
        # An external volume without src is the admin's directory: it must exist already.
        os.makedirs(os.path.join(home, "volumes", "dir"), exist_ok=True)
        fstab = os.path.join(home, "etc", "fstab")
        open(fstab, "a").close()
        hosts[name] = {
            "bench_home": home,
            "storage_registry": os.path.join(home, "etc", "storage.json"),
            "storage_fstab": fstab,
            "flexvdi_image_storages": [
                {
                    "name": "Bench",
                    "hosts": [name],
                    "root": os.path.join(home, "root"),
                    "volumes": [
                        {"name": "Dir", "type": "external", "mount_point": os.path.join(home, "volumes", "dir")}
                    ],
                }
            ],
        }
    return {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "hosts": hosts,
        }
    }


def playbooks():
    common = {"hosts": "all", "gather_facts": False}
    role = [dict(common, name="role", roles=[{"role": "flexvdi.storage.storage"}])]
    ping = [dict(common, name="ping", tasks=[{"name": "ping", "ansible.builtin.ping": None}])]
    volume = "{{ bench_home }}/volumes/dir"
    stock = [
        dict(
            common,
            name="stock",
            tasks=[
                {
                    "name": "image storage root",
                    "ansible.builtin.file": {"path": "{{ bench_home }}/root", "state": "directory"},
                },
                {"name": "mount point", "ansible.builtin.file": {"path": volume, "state": "directory"}},
                {"name": "volume status", "ansible.builtin.stat": {"path": volume}},
            ],
        )
    ]
    return {"role": role, "ping": ping, "stock": stock}


def run(path, inventory_path, forks, hosts, expect_unchanged=True):
    """(wall, CPU) seconds of one ansible-playbook run; BenchError unless it passed on every host (and changed nothing).

    CPU: user + system of ansible-playbook and of every process it reaped (workers reap their
    module runs), the growth of this process's RUSAGE_CHILDREN over the run (its only child).
    """
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    env.setdefault("ANSIBLE_CONFIG", os.path.join(REPO, "ansible.cfg"))
    cmd = [PLAYBOOK, "-i", inventory_path, "--forks", str(forks), path]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tail = proc.stdout[-3000:] + proc.stderr[-2000:]
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed (rc={proc.returncode}):\n{tail}")
    recap = {m.group(1): [int(x) for x in m.groups()[1:]] for m in RECAP.finditer(proc.stdout)}
    if sorted(recap) != sorted(hosts):
        raise BenchError(f"{path}: the recap lists {len(recap)} hosts, not the {len(hosts)} of the inventory:\n{tail}")
    if expect_unchanged:
        changed = sorted((h for h, (_ok, ch, _u, _f) in recap.items() if ch), key=lambda h: int(h[4:]))
        if changed:
            raise BenchError(f"{path}: not a no-op run, changed on {', '.join(changed)}:\n{tail}")
    return elapsed, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50, help="simulated hosts (default 50)")
    parser.add_argument("--forks", type=int, default=5, help="ansible-playbook --forks (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each playbook (default 3)")
    parser.add_argument("--no-stock", action="store_true", help="skip the stock-modules baseline")
    args = parser.parse_args()
    if args.hosts < 1 or args.forks < 1 or args.repeat < 1:
        parser.error("--hosts, --forks and --repeat must be at least 1")
    if not os.access(PLAYBOOK, os.X_OK):
        sys.exit(f"no ansible-playbook next to {sys.executable}: run with .venv/newest/bin/python after make setup")

    base = tempfile.mkdtemp(prefix="flexvdi-bench-hosts-")
    try:
        hosts = ["host%d" % i for i in range(args.hosts)]
        inventory_path = os.path.join(base, "inventory.yml")
        with open(inventory_path, "w") as handle:
            yaml.safe_dump(inventory(base, args.hosts), handle)
        files = {}
        for kind, content in playbooks().items():
            if kind == "stock" and args.no_stock:
                continue
            files[kind] = os.path.join(base, kind + ".yml")
            with open(files[kind], "w") as handle:
                yaml.safe_dump(content, handle)

        warm, warm_cpu = run(files["role"], inventory_path, args.forks, hosts, expect_unchanged=False)
        print(f"warm-up (converge {args.hosts} hosts): {warm:.2f}s wall, {warm_cpu:.2f}s CPU", flush=True)
        run(files["role"], inventory_path, args.forks, hosts)  # converged: the next runs are no-ops
        if "stock" in files:
            run(files["stock"], inventory_path, args.forks, hosts)  # finds the role's state converged too
        times = {kind: [] for kind in files}
        for round_ in range(args.repeat):
            for kind in files:
                times[kind].append(run(files[kind], inventory_path, args.forks, hosts))
            print(
                "run %d: " % (round_ + 1)
                + "  ".join(f"{k} {v[-1][0]:.2f}s wall {v[-1][1]:.2f}s CPU" for k, v in times.items()),
                flush=True,
            )
    except BenchError as exc:
        print(f"hosts_noop: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(base, ignore_errors=True)

    # med[kind] = (median wall, median CPU), each the median of its own runs.
    med = {kind: tuple(statistics.median(run[i] for run in values) for i in (0, 1)) for kind, values in times.items()}
    print()
    print(f"{args.hosts} hosts, forks {args.forks}, median of {args.repeat} no-op runs (seconds)")
    print()
    print("| playbook | wall | CPU | wall runs | CPU runs | role / this, wall | role / this, CPU |")
    print("|---|---|---|---|---|---|---|")
    for kind in files:
        walls = ", ".join("%.2f" % wall for wall, _cpu in times[kind])
        cpus = ", ".join("%.2f" % cpu for _wall, cpu in times[kind])
        ratios = [med["role"][i] / med[kind][i] for i in (0, 1)]
        print("| %s | %.2f | %.2f | %s | %s | %.2f | %.2f |" % (kind, *med[kind], walls, cpus, *ratios))
    print()
    for kind in [k for k in files if k != "role"]:
        wall, cpu = (med["role"][i] / med[kind][i] for i in (0, 1))
        goal = " (goal of issue 17: at most %.1f)" % GOAL if kind == "ping" else ""
        print("role/%s: wall %.2f, CPU %.2f%s" % (kind, wall, cpu, goal))
    return 0


if __name__ == "__main__":
    sys.exit(main())
