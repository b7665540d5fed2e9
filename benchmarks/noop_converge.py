#!/usr/bin/env python3
"""No-op converge: our role vs. an equivalent playbook of stock modules, run side by side.

N external volumes (bind mounts of plain directories, owned by the qemu user) in one
image storage are converged once, then the converged state is re-run, alternating:
  ours  - the flexvdi.storage.storage role (one module run per phase for all the volumes)
  stock - per volume: file + stat + ansible.posix.mount + command (qemu write check)
  ping  - an ansible.builtin.ping loop of N items (the cost of one module execution)
  ping1 - a playbook of one ansible.builtin.ping task (the least a playbook run costs)
It prints the median wall time of each, the ratios ours/stock and ours/ping1 per N, and the
marginal cost per volume (least-squares slope over N) of ours and stock against ping's.

Usage: .venv/newest/bin/python benchmarks/noop_converge.py [--sizes 1,10,50] [--repeat 3]
(as root, after `make setup`: the stock playbook needs ansible.posix, which .venv/newest has;
uses the ansible-playbook next to this Python, and a private registry/fstab under a temp dir)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
QEMU_USER = os.environ.get("BENCH_QEMU_USER", "libvirt-qemu")


def play(name, tasks=None, roles=None, play_vars=None):
    body = {
        "name": name,
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": dict(play_vars or {}, ansible_python_interpreter=sys.executable),
    }
    if tasks:
        body["tasks"] = tasks
    if roles:
        body["roles"] = roles
    return [body]


def scenario(base, n):
    srcs = [os.path.join(base, "src", "v%03d" % i) for i in range(n)]
    mps = [os.path.join(base, "mnt", "v%03d" % i) for i in range(n)]
    for path in srcs:
        os.makedirs(path, exist_ok=True)
    fstab = os.path.join(base, "fstab")
    open(fstab, "a").close()
    ours = play(
        "ours",
        roles=[{"role": "flexvdi.storage.storage"}],
        play_vars={
            "storage_registry": os.path.join(base, "storage.json"),
            "storage_fstab": fstab,
            "flexvdi_image_storages": [
                {
                    "name": "Bench",
                    "hosts": ["localhost"],
                    "root": os.path.join(base, "root"),
                    "volumes": [
                        {
                            "name": "v%03d" % i,
                            "type": "external",
                            "mount_point": mps[i],
                            "src": srcs[i],
                            "owner_qemu": True,
                        }
                        for i in range(n)
                    ],
                }
            ],
        },
    )
    volumes = [{"src": s, "path": m} for s, m in zip(srcs, mps)]
    stock = play(
        "stock",
        play_vars={"volumes": volumes},
        tasks=[
            {
                "name": "mount point",
                "ansible.builtin.file": {"path": "{{ item.path }}", "state": "directory", "mode": "0755"},
                "loop": "{{ volumes }}",
            },
            {
                "name": "mount",
                "ansible.posix.mount": {
                    "path": "{{ item.path }}",
                    "src": "{{ item.src }}",
                    "fstype": "none",
                    "opts": "bind",
                    "state": "mounted",
                    "fstab": fstab,
                },
                "loop": "{{ volumes }}",
            },
            {
                "name": "owner",
                "ansible.builtin.file": {"path": "{{ item.path }}", "owner": QEMU_USER, "state": "directory"},
                "loop": "{{ volumes }}",
            },
            {"name": "stat", "ansible.builtin.stat": {"path": "{{ item.path }}"}, "loop": "{{ volumes }}"},
            {
                "name": "qemu can write",
                "ansible.builtin.command": {
                    "argv": [
                        "setpriv",
                        "--reuid",
                        QEMU_USER,
                        "--regid",
                        "kvm",
                        "--init-groups",
                        "test",
                        "-w",
                        "{{ item.path }}",
                    ]
                },
                "changed_when": False,
                "loop": "{{ volumes }}",
            },
        ],
    )
    ping = play(
        "ping",
        play_vars={"items": list(range(n))},
        tasks=[{"name": "ping", "ansible.builtin.ping": None, "loop": "{{ items }}"}],
    )
    ping1 = play("ping1", tasks=[{"name": "ping", "ansible.builtin.ping": None}])
    files = {}
    for kind, content in (("ours", ours), ("stock", stock), ("ping", ping), ("ping1", ping1)):
        files[kind] = os.path.join(base, kind + ".yml")
        with open(files[kind], "w") as handle:
            yaml.safe_dump(content, handle)
    return files, mps


def run(path, expect_changed=None):
    env = dict(os.environ)
    if os.path.exists(os.path.join(REPO, "ansible.cfg")):
        env.setdefault("ANSIBLE_CONFIG", os.path.join(REPO, "ansible.cfg"))
    start = time.monotonic()
    proc = subprocess.run([PLAYBOOK, "-i", "localhost,", path], capture_output=True, text=True, env=env)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed: {path}\n{proc.stdout[-3000:] + proc.stderr[-2000:]}")
    if expect_changed is not None and ("changed=%d " % expect_changed) not in proc.stdout:
        sys.exit(f"{path} was not a no-op re-run:\n{proc.stdout[-2000:]}")
    return elapsed


def slope(xs, ys):
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    medians = {}
    for n in sizes:
        base = tempfile.mkdtemp(prefix="flexvdi-bench-%d-" % n)
        os.chmod(base, 0o755)
        try:
            files, mps = scenario(base, n)
            run(files["ours"])  # converge once; the stock play then finds it converged too
            run(files["stock"], expect_changed=0)
            times = {"ours": [], "stock": [], "ping": [], "ping1": []}
            for _ in range(args.repeat):  # alternate, so drift hits all of them alike
                for kind in times:
                    times[kind].append(run(files[kind], expect_changed=0))
            medians[n] = {k: statistics.median(v) for k, v in times.items()}
            print(
                "N=%-3d ours %.2fs  stock %.2fs  ping %.2fs  ping1 %.2fs  ours/stock %.2f  ours/ping1 %.2f"
                % (
                    n,
                    medians[n]["ours"],
                    medians[n]["stock"],
                    medians[n]["ping"],
                    medians[n]["ping1"],
                    medians[n]["ours"] / medians[n]["stock"],
                    medians[n]["ours"] / medians[n]["ping1"],
                ),
                flush=True,
            )
        finally:
            for mp in reversed(mps):
                subprocess.run(["umount", mp], capture_output=True)
            shutil.rmtree(base, ignore_errors=True)
    print()
    print("| N | ours (s) | stock (s) | ours/stock | ping loop (s) | one ping (s) | ours/one ping |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        m = medians[n]
        print(
            "| %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |"
            % (n, m["ours"], m["stock"], m["ours"] / m["stock"], m["ping"], m["ping1"], m["ours"] / m["ping1"])
        )
    if len(sizes) > 1:
        per = {k: slope(sizes, [medians[n][k] for n in sizes]) for k in ("ours", "stock", "ping")}
        print()
        print(
            "marginal cost per volume: ours {:.3f}s, stock {:.3f}s, ping loop item {:.3f}s".format(
                per["ours"], per["stock"], per["ping"]
            )
        )
        print(
            "ours per volume / ping per item: {:.2f}   stock per volume / ping per item: {:.2f}".format(
                per["ours"] / per["ping"], per["stock"] / per["ping"]
            )
        )


if __name__ == "__main__":
    main()
