"""AWX job templates, run the way AWX runs them: `ansible-runner transmit | worker | process`.

AWX gives every job a private data dir (project, inventory, env/) and runs it as `ansible-runner
worker` in an execution environment, with the job events as its record. Here, on this host
and with no container, the same path: the project is this checkout (the files git knows), and
its `collections/requirements.yml` installs the collection from it, as a project sync does;
the inventory puts the VDI host `kvm1` on this machine (connection local) with a private
registry, fstab, storage root and media share; the job's extra vars go to env/extravars, and
the "flexVDI media share" credential's injected extra vars (docs/awx/) to a 0400 file of their
own, every string `!unsafe`, passed with `-e @file`, as AWX writes them.

Jobs: a Check job of playbooks/site.yml (`--check --diff`, -vvvv), a Run job (`--diff`), then a
Check and a Run job after the declaration grew, and the storage report; and a job sliced in two,
whose slices run at the same time. Asserted from the job events only: each object's result, the
Check job's prediction against what the Run job changed, the media password in no artifact at
any verbosity, no event result blanked for its size, and the sliced job's refusal.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO, TOOLS, run, tool
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts and chowns for the qemu user: root only")

# Literal braces and quotes: never templated, nor written anywhere. Random, so that no file of
# the project (this one included) holds it.
SECRET = "Zq8-{{ not_a_var }}-'\"%s-" + secrets.token_hex(8)
MAX_EVENT_RES = 700_000
# The storage role's one module: each job event of its converge phase lists every object's own result.
STORAGE_ACTION = "flexvdi.storage.storage"
_MODULE_OF = {"external": "external_volume", "ocfs2": "ocfs2_volume", "gluster": "gluster_volume"}


class _Unsafe(str):
    pass


class _AWXDumper(yaml.SafeDumper):
    pass


# AWX dumps credential extra vars with every string tagged !unsafe (awx/main/utils/safe_yaml.py).
_AWXDumper.add_representer(_Unsafe, lambda dumper, data: dumper.represent_scalar("!unsafe", str(data), style="'"))


def _unsafe(value):
    if isinstance(value, dict):
        return {k: _unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    return _Unsafe(value) if isinstance(value, str) else value


def _credential_extra_vars(inputs: dict) -> dict:
    """The injectors of docs/awx/media_share_credential_type.yml rendered as AWX renders them."""
    ctype = yaml.safe_load((REPO / "docs" / "awx" / "media_share_credential_type.yml").read_text())
    fields = {f["id"] for f in ctype["inputs"]["fields"]}
    assert set(ctype["inputs"]["required"]) <= fields and set(inputs) <= fields
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    values = {f: inputs.get(f, "") for f in fields}
    return {k: env.from_string(v).render(**values) for k, v in ctype["injectors"]["extra_vars"].items()}


def _project(dest: Path) -> None:
    """The project checkout: the files git knows (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if rel == ".venv" or rel.startswith((".venv/", ".cache/")) or not src.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)


@pytest.fixture(scope="module")
def site():
    """A scratch VDI host: registry, fstab, storage root, image directories and a local media share.

    Under /tmp/flexvdi-awx, 0755 all the way down (not pytest's 0700 tmp_path): the qemu user
    must reach a volume for it to be qemu-writable.
    """
    top = Path("/tmp/flexvdi-awx")
    top.mkdir(mode=0o755, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="site-", dir=top))
    base.chmod(0o755)
    share = base / "share"
    (share / "isos").mkdir(parents=True)
    for name in ("debian-12.iso", "isos/windows-11.iso", "export.fvm"):
        with open(share / name, "wb") as handle:
            handle.truncate(4096)
    samba = base / "smb.conf"
    samba.write_text(f"[global]\n  server min protocol = SMB3\n\n[media]\n  path = {share}\n  read only = no\n")
    (base / "etc").mkdir()
    fstab = base / "etc" / "fstab"
    shutil.copyfile("/etc/fstab", fstab)
    images = base / "images"
    images.mkdir(mode=0o750)
    (base / "images2").mkdir(mode=0o750)
    site = {
        "base": base,
        "registry": base / "etc" / "storage.json",
        "fstab": fstab,
        "samba": samba,
        "media_mount": base / "media",
    }
    yield site
    mounted = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    left = [m for m in mounted if m.startswith(str(base) + "/")]
    for mount_point in reversed(left):
        subprocess.run(["umount", mount_point], capture_output=True, check=False)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The project as AWX syncs it, with its requirements_collections installed from it."""
    root = tmp_path_factory.mktemp("awx-project")
    checkout = root / "project"
    checkout.mkdir()
    _project(checkout)
    collections = root / "requirements_collections"
    # What project_update.yml runs, from the project root, in the control-plane EE.
    proc = run(
        [tool("ansible-galaxy"), "collection", "install", "-r", "collections/requirements.yml", "-p", str(collections)],
        cwd=checkout,
        env={**_runner_env(), "ANSIBLE_COLLECTIONS_PATH": str(collections)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = collections / "ansible_collections" / "flexvdi" / "storage"
    assert (installed / "MANIFEST.json").is_file(), proc.stdout
    assert not (installed / "inventories" / "lab").exists(), "build_ignore was not honoured"
    return root


def _runner_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{TOOLS / 'bin'}:{env.get('PATH', '')}"
    env.pop("ANSIBLE_CONFIG", None)
    return env


def _inventory(site, volumes) -> dict:
    storage_vars = {
        "flexvdi_image_storages": [
            {
                "name": "MyImageStorage",
                "hosts": "{{ groups['vdi_hosts'] }}",
                "root": str(site["base"] / "volumes" / "MyImageStorage"),
                "volumes": volumes,
            }
        ],
        "flexvdi_media_storages": [
            {
                "name": "cifs",
                "server": "127.0.0.1",
                "share": "media",
                "username": "{{ flexvdi_media_username }}",
                "password": "{{ flexvdi_media_password }}",
                "domain": "{{ flexvdi_media_domain | default(omit, true) }}",
                "samba_config": str(site["samba"]),
                "mount_point": str(site["media_mount"]),
                "hosts": "{{ groups['vdi_hosts'] }}",
            }
        ],
    }
    kvm1 = {
        "ansible_connection": "local",
        "ansible_python_interpreter": str(TOOLS / "bin" / "python"),
        "storage_registry": str(site["registry"]),
        "storage_fstab": str(site["fstab"]),
    }
    return {"all": {"children": {"vdi_hosts": {"hosts": {"kvm1": kvm1}, "vars": storage_vars}, "media_servers": {}}}}


def _volume(site, name, directory):
    return {"name": name, "type": "external", "mount_point": str(site["base"] / directory), "owner_qemu": True}


def _job(project, site, tmp_path, ident, playbook, volumes, job_type="run", verbosity=0, inventory=None):
    """Run one AWX job through transmit | worker | process; return its events and directories."""
    pdd = tmp_path / f"{ident}-pdd"
    worker = tmp_path / f"{ident}-worker"
    shutil.copytree(project / "project", pdd / "project")
    shutil.copytree(project / "requirements_collections", pdd / "requirements_collections")
    (pdd / "inventory").mkdir()
    (pdd / "inventory" / "hosts").write_text(yaml.safe_dump(inventory or _inventory(site, volumes)))
    env = pdd / "env"
    env.mkdir()
    (env / "extravars").write_text(yaml.safe_dump({"awx_job_template_name": f"flexvdi storage {job_type}"}))
    credential = env / "tmp_credential_extravars"
    credential.write_text(
        yaml.dump(_unsafe(_credential_extra_vars({"username": "flexvdi", "password": SECRET})), Dumper=_AWXDumper)
    )
    credential.chmod(0o400)
    assert "flexvdi_media_password: !unsafe '" in credential.read_text()
    worker_collections = worker / "requirements_collections"
    (env / "envvars").write_text(
        yaml.safe_dump(
            {
                "ANSIBLE_COLLECTIONS_PATH": str(worker_collections),
                "MAX_EVENT_RES": str(MAX_EVENT_RES),
                "JOB_ID": str(len(list(tmp_path.iterdir()))),
            }
        )
    )
    args = ["--check"] if job_type == "check" else []
    args += ["--diff", "-e", f"@{worker / 'env' / credential.name}"]
    if verbosity:
        args.append("-" + "v" * verbosity)
    (env / "cmdline").write_text(" ".join(args))

    transmit = subprocess.Popen(
        [tool("ansible-runner"), "transmit", str(pdd), "-p", playbook, "--ident", ident],
        stdout=subprocess.PIPE,
        env=_runner_env(),
    )
    work = subprocess.Popen(
        [tool("ansible-runner"), "worker", "--private-data-dir", str(worker)],
        stdin=transmit.stdout,
        stdout=subprocess.PIPE,
        env=_runner_env(),
    )
    transmit.stdout.close()
    processed = subprocess.run(
        [tool("ansible-runner"), "process", str(pdd), "--ident", ident],
        stdin=work.stdout,
        capture_output=True,
        text=True,
        env=_runner_env(),
        timeout=600,
        check=False,
    )
    # The worker exits with the playbook's code (2 for a failed job): the job status tells.
    assert transmit.wait(60) == 0 and work.wait(60) in (0, 2), processed.stdout[-3000:] + processed.stderr[-3000:]
    assert processed.returncode == 0, processed.stderr[-3000:]
    events_dir = pdd / "artifacts" / ident / "job_events"
    events = [
        json.loads(p.read_text()) for p in sorted(events_dir.glob("*.json"), key=lambda p: int(p.name.split("-")[0]))
    ]
    status = (pdd / "artifacts" / ident / "status").read_text().strip()
    return {"events": events, "status": status, "stdout": processed.stdout, "dirs": (pdd, worker)}


def _results(job) -> dict:
    """(module, object) -> ('changed' | 'ok' | 'skipped' | 'failed', result), from the events of the role's
    converge phase: one event per host, whose result lists each object with its own."""
    out = {}
    for ev in job["events"]:
        data = ev.get("event_data", {})
        action = data.get("resolved_action") or data.get("task_action")
        if action != STORAGE_ACTION or ev["event"] not in ("runner_on_ok", "runner_on_failed"):
            continue
        res = data.get("res", {})
        assert res != {}, f"event {ev['counter']}: result blanked (over MAX_EVENT_RES?)"
        if res.get("skipped") or "objects" not in res:
            continue  # the identify and create phases, which have nothing to do here
        for obj in res["objects"]:
            module = _MODULE_OF.get(obj["kind"], obj["kind"])
            label = f"{obj['image_storage']}/{obj['name']}" if obj["kind"] in _MODULE_OF else obj["name"]
            kind = "failed" if obj.get("failed") else "changed" if obj.get("changed") else "ok"
            out[(module, label)] = (kind, obj)
    return out


def _changed(results) -> set:
    return {key for key, (kind, _res) in results.items() if kind == "changed"}


def _secret_in(job) -> list[str]:
    found = []
    forms = {SECRET, json.dumps(SECRET)[1:-1]}
    for top in job["dirs"]:
        for path in Path(top).rglob("*"):
            # The credential's own file holds it, as in AWX (0400, deleted with the job).
            if path.is_file() and path.name != "tmp_credential_extravars":
                data = path.read_bytes().decode("utf-8", "replace")
                if any(form in data for form in forms):
                    found.append(str(path))
    if any(form in job["stdout"] for form in forms):
        found.append("process stdout")
    return found


def test_site_check_then_run_as_awx_jobs(project, site, tmp_path):
    volumes = [_volume(site, "MyExternalVolume", "images")]
    before = {p: p.read_bytes() if p.exists() else None for p in (site["registry"], site["fstab"])}

    # Check job, at the highest verbosity: predicts, writes nothing.
    check = _job(project, site, tmp_path, "check1", "playbooks/site.yml", volumes, "check", verbosity=4)
    assert check["status"] == "successful", check["stdout"][-4000:]
    assert {p: p.read_bytes() if p.exists() else None for p in before} == before
    predicted = _results(check)

    run1 = _job(project, site, tmp_path, "run1", "playbooks/site.yml", volumes)
    assert run1["status"] == "successful", run1["stdout"][-4000:]
    done = _results(run1)
    # Every object's result is in the events.
    assert set(done) == {
        ("image_storage", "MyImageStorage"),
        ("external_volume", "MyImageStorage/MyExternalVolume"),
        ("media_storage", "cifs"),
    }, sorted(done)
    assert _changed(done) == set(done)
    media = done[("media_storage", "cifs")][1]["media_storage"]
    assert (media["status"], media["transport"], media["files_count"]) == ("online", "local", 3)
    assert done[("external_volume", "MyImageStorage/MyExternalVolume")][1]["volume"]["qemu_writable"] is True
    # The Check job predicted it object by object, on a host with nothing registered: the same objects
    # changed, with the same steps (the volume of the storage it is about to create too).
    assert _changed(predicted) == _changed(done)
    assert {k: r["actions"] for k, (_kind, r) in predicted.items()} == {
        k: r["actions"] for k, (_kind, r) in done.items()
    }

    # The declaration grows: the Check job predicts exactly what the Run job changes.
    volumes = [*volumes, _volume(site, "Second", "images2")]
    check = _job(project, site, tmp_path, "check2", "playbooks/site.yml", volumes, "check", verbosity=3)
    run3 = _job(project, site, tmp_path, "run3", "playbooks/site.yml", volumes)
    assert check["status"] == run3["status"] == "successful", check["stdout"][-3000:] + run3["stdout"][-3000:]
    assert _changed(_results(check)) == _changed(_results(run3)) == {("external_volume", "MyImageStorage/Second")}

    report = _job(project, site, tmp_path, "report", "playbooks/storage_report.yml", volumes, verbosity=2)
    assert report["status"] == "successful", report["stdout"][-3000:]
    [info] = [
        ev["event_data"]["res"]
        for ev in report["events"]
        if ev["event"] == "runner_on_ok" and ev["event_data"].get("resolved_action") == "flexvdi.storage.storage_info"
    ]
    assert [v["name"] for s in info["image_storages"] for v in s["volumes"]] == ["MyExternalVolume", "Second"]
    assert [m["name"] for m in info["media_storages"]] == ["cifs"]

    for job in (check, run1, run3, report):
        assert not _secret_in(job), _secret_in(job)
        for ev in job["events"]:
            assert len(json.dumps(ev.get("event_data", {}).get("res", {}))) < MAX_EVENT_RES


# --- job slicing -----------------------------------------------------------------------------


HOSTS = ("kvm1", "kvm2")


def _cluster(site, names):
    """kvm1 and kvm2, both this machine, each with its own registry and fstab; the storages list
    their hosts in an inventory variable (flexvdi_vdi_hosts), which every slice sees whole."""
    inventory = _inventory(site, [_volume(site, "MyExternalVolume", "images")])
    group = inventory["all"]["children"]["vdi_hosts"]
    template = group["hosts"].pop("kvm1")
    for name in names:
        etc = site["base"] / "cluster" / name
        etc.mkdir(parents=True, exist_ok=True)
        if not (etc / "fstab").exists():
            shutil.copyfile("/etc/fstab", etc / "fstab")
        group["hosts"][name] = dict(
            template, storage_registry=str(etc / "storage.json"), storage_fstab=str(etc / "fstab")
        )
    group["vars"]["flexvdi_vdi_hosts"] = list(HOSTS)
    for storage in group["vars"]["flexvdi_image_storages"] + group["vars"]["flexvdi_media_storages"]:
        storage["hosts"] = "{{ flexvdi_vdi_hosts }}"
    return inventory


def _host_files(site):
    return {p: p.read_bytes() for p in (site["base"] / "cluster").rglob("*") if p.is_file()}


def test_sliced_job_refuses_on_every_host_and_writes_nothing(project, site, tmp_path):
    """Job Slicing 2 over kvm1 and kvm2: AWX runs two jobs at once, each with an inventory of half
    the hosts (Inventory.get_sliced_hosts: hosts[n-1::count]). Each refuses on its host, saying to
    turn slicing off; no host registers a storage whose host set is its slice, nothing is written."""
    hosts = list(HOSTS)
    _cluster(site, hosts)
    before = _host_files(site)
    assert len(before) == len(hosts)  # the fstabs; no registry yet
    slices = [hosts[n::2] for n in range(2)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        jobs = list(
            pool.map(
                lambda n: _job(
                    project,
                    site,
                    tmp_path,
                    f"slice{n + 1}",
                    "playbooks/site.yml",
                    [],
                    inventory=_cluster(site, slices[n]),
                ),
                range(2),
            )
        )
    for part, job in zip(slices, jobs):
        assert job["status"] == "failed", job["stdout"][-3000:]
        failed = {
            ev["event_data"]["host"]: ev["event_data"]["res"]["msg"]
            for ev in job["events"]
            if ev["event"] == "runner_on_failed" and ev["event_data"].get("resolved_action") == STORAGE_ACTION
        }
        assert sorted(failed) == part, (part, failed)
        others = ", ".join(h for h in hosts if h not in part)
        for msg in failed.values():
            assert f"image storage MyImageStorage: hosts lists {others}, not in the inventory" in msg, msg
            assert "set its Job Slicing to 1" in msg and "nothing was changed" in msg, msg
        assert not any(
            ev["event"] == "runner_on_ok" and ev["event_data"].get("resolved_action") == STORAGE_ACTION
            for ev in job["events"]
        )
    assert _host_files(site) == before

    # The same declaration, unsliced: one job sees every host and converges them all.
    whole = _job(project, site, tmp_path, "unsliced", "playbooks/site.yml", [], inventory=_cluster(site, hosts))
    assert whole["status"] == "successful", whole["stdout"][-3000:]
    for name in hosts:
        registry = json.loads((site["base"] / "cluster" / name / "storage.json").read_text())
        assert registry["image_storages"]["MyImageStorage"]["hosts"] == hosts
        assert registry["media_storages"]["cifs"]["hosts"] == hosts
