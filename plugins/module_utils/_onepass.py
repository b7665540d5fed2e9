# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One pass per host: a host's whole declaration in one module run. Private to the collection.

The declaration of the ``storage`` role (image storages with their volumes, media storages,
direct storages) becomes a list of objects in dependency order, each with the arguments of
its own module, validated by that module's argument spec (``_module``): one rule, whether an
object comes through its module or through here. Every object is then converged by its
module's own planner, in one registry transaction (``Host.batch``): each object's steps are
applied, and undone alone when it fails; what depends on a failed object is skipped; the
fstab and the registry are written once, at the end.

Phases (``phase``), each one run per host, so that no host waits inside a module for another:
``identify`` (read-only: what each host sees at every OCFS2 device), ``create`` (the first host
of each storage formats its blank OCFS2 devices and creates and starts its Gluster volumes;
nothing else) and ``converge`` (everything; nobody formats, creates or polls).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from . import _module
from ._errors import StorageError
from ._validate import check_name, check_path

# Volume types: the argument spec of each (its module's).
VOLUME_TYPES = {
    "external": _module.external_volume_spec,
    "ocfs2": _module.ocfs2_volume_spec,
    "gluster": _module.gluster_volume_spec,
}
# Options of the pass that every object's module takes (when its spec has them).
COMMON = ("registry", "fstab", "qemu_user", "inventory_hostname", "inventory_hosts")
TYPE_WORDS = {"external": "external", "ocfs2": "OCFS2", "gluster": "Gluster"}


@dataclass
class Item:
    kind: str  # image_storage, volume, media_storage, direct_storage
    label: str  # in words: "volume V of image storage S"
    params: dict
    converge: Callable
    key: dict  # what names it in the result
    needs: list = field(default_factory=list)  # labels of the items it depends on
    type: str = ""  # a volume's type


def _code(kind):
    """The module_utils of a kind of object (or volume type), imported when a declaration has one.

    The module process compiles every module_utils it imports: a host of external volumes alone
    never compiles the OCFS2, Gluster, media or direct storage code. Each import is written out,
    so that ansible-core's module_utils finder still puts them all in the module's payload.
    """
    if kind == "ocfs2":
        from . import _ocfs2 as code
    elif kind == "gluster":
        from . import _gluster as code
    elif kind == "media_storage":
        from . import _media as code
    elif kind == "direct_storage":
        from . import _direct as code
    elif kind == "external":
        from . import _external as code
    else:
        from . import _image_storage as code
    return code


def _ignored(volume, spec):
    """The options of a volume that only another type takes, and type: ignored, as the role always did.

    The other types' specs (and so their code) are read only when the volume has options its own lacks.
    """
    extra = set(volume) - set(spec) - {"type"}
    if extra:
        extra &= {key for spec_of in VOLUME_TYPES.values() for key in spec_of()[0]}
    return extra | {"type"}


def _clean(raw):
    return {k: v for k, v in (raw or {}).items() if v is not None}


def objects(params, me):
    """The declaration as items in dependency order, and every error found in it (all at once)."""
    common = {k: params.get(k) for k in COMMON if params.get(k) is not None}
    items, errors = [], []

    def add(kind, label, raw, spec_of, key, needs=(), vtype=""):
        spec, extra = spec_of()
        values = dict(_clean(raw))
        for name, value in common.items():
            if name in spec and name not in values:
                values[name] = value
        result = ArgumentSpecValidator(spec, **extra).validate(values)
        errors.extend(f"{label}: {message}" for message in result.error_messages)
        converge = _code(vtype or kind).converge
        item = Item(kind, label, result.validated_parameters, converge, key, list(needs), vtype)
        items.append(item)
        return item

    storages = [s for s in params.get("image_storages") or [] if isinstance(s, dict)]
    present, absent_volumes, kept, absent = [], [], {t: [] for t in VOLUME_TYPES}, []
    for storage in storages:
        name = storage.get("name")
        label = f"image storage {name}"
        wanted = storage.get("state") or "present"
        hosts = storage.get("hosts")
        raw = {k: v for k, v in storage.items() if k != "volumes"}
        if wanted == "present":
            present.append((label, raw))
        else:
            absent.append((label, raw))
        listed = hosts is None or me in hosts
        for volume in storage.get("volumes") or []:
            if not isinstance(volume, dict):
                errors.append(f"{label}: a volume must be a dictionary, not {volume!r}")
                continue
            vtype = volume.get("type") or "external"
            if vtype not in VOLUME_TYPES:
                errors.append(
                    f"volume {volume.get('name')} of {label}: type {vtype!r} is not one of "
                    f"{', '.join(VOLUME_TYPES)}: fix type"
                )
                continue
            ignored = _ignored(volume, VOLUME_TYPES[vtype]()[0])
            vraw = {k: v for k, v in volume.items() if k not in ignored}
            vraw["image_storage"] = name
            vlabel = f"{TYPE_WORDS[vtype]} volume {volume.get('name')} of {label}"
            gone = wanted != "present" or (volume.get("state") or "present") != "present"
            if not listed:
                continue
            if gone:
                vraw["state"] = "absent"
                absent_volumes.append((vtype, vlabel, vraw, label if wanted != "present" else None))
            else:
                kept[vtype].append((vlabel, vraw, label))
    for label, raw in present:
        add("image_storage", label, raw, _module.image_storage_spec, _key(raw, "image_storage"))
    removals = {}
    for vtype in VOLUME_TYPES:
        for kind, vlabel, vraw, of_absent in absent_volumes:
            if kind != vtype:
                continue
            item = add("volume", vlabel, vraw, VOLUME_TYPES[vtype], _key(vraw, vtype), (), vtype)
            if of_absent:
                removals.setdefault(of_absent, []).append(item.label)
    for vtype, found in kept.items():
        for vlabel, vraw, storage_label in found:
            add("volume", vlabel, vraw, VOLUME_TYPES[vtype], _key(vraw, vtype), [storage_label], vtype)
    for media in params.get("media_storages") or []:
        raw = dict(_clean(media))
        raw.setdefault("state", "present")
        password = (params.get("media_passwords") or {}).get(raw.get("name"))
        if password is not None and "password" not in raw:
            raw["password"] = password
        add(
            "media_storage",
            f"media storage {raw.get('name')}",
            raw,
            _module.media_storage_spec,
            _key(raw, "media_storage"),
        )
    for direct in params.get("direct_storages") or []:
        raw = dict(_clean(direct))
        add(
            "direct_storage",
            f"direct storage {raw.get('name')}",
            raw,
            _module.direct_storage_spec,
            _key(raw, "direct_storage"),
        )
    for label, raw in absent:
        add(
            "image_storage",
            label,
            raw,
            _module.image_storage_spec,
            _key(raw, "image_storage"),
            removals.get(label, []),
        )
    for item in items:
        errors.extend(_static_errors(item))
    labels = [item.label for item in items]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    errors.extend(f"{label} is declared more than once: keep one" for label in twice)
    return items, errors


def _key(raw, kind):
    key = {"kind": kind, "name": raw.get("name")}
    if "image_storage" in raw:
        key["image_storage"] = raw["image_storage"]
    return key


def _static_errors(item):
    """What can be told wrong from the arguments alone (names, paths, type options), as its module would."""
    p, found = item.params, []

    def check(fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except StorageError as exc:
            found.append(exc.msg if exc.msg.startswith(item.label) else f"{item.label}: {exc.msg}")

    if p.get("name") is not None:
        check(check_name, p["name"], "name")
    if p.get("image_storage") is not None:
        check(check_name, p["image_storage"], "image_storage")
    present = p.get("state", "present") == "present"
    for option in ("root", "mount_point", "brick"):
        if present and isinstance(p.get(option), str):
            check(check_path, p[option], item.label, option=option, resolve=False)
    if not present:
        return found
    if item.type == "ocfs2" and p.get("device"):
        ocfs2 = _code("ocfs2")
        check(ocfs2.check_device, p["device"], item.label)
        if p.get("label") is not None:
            check(ocfs2.check_label, p["label"], item.label)
        check(ocfs2.check_cluster_name, p["cluster_name"], item.label)
    if item.type == "gluster":
        gluster = _code("gluster")
        check(gluster.check_volume_name, p["name"], item.label)
        check(gluster.check_options, p["options"], item.label)
    if item.kind == "media_storage" and p.get("server"):
        media = _code("media_storage")
        check(media.check_server, p["server"])
        check(media.check_vers, p["vers"])
    return found


def converge(host):
    """The module's run: refuse a bad declaration whole, else converge (or identify) object by object."""
    p = host.params
    me = host.hostname
    items, errors = objects(p, me)
    if errors:
        raise StorageError(
            "the declaration has {} error(s), so nothing was done on any object: {}".format(
                len(errors), "; ".join(errors)
            )
        )
    host.declared = {s.get("name"): s for s in p["image_storages"] or [] if isinstance(s, dict)}
    if p["phase"] == "identify":
        return identify(host, items)
    host.stage = p["phase"]
    host.wait_timeout = p["wait_timeout"] or 0
    host.creators = p["creators"] or {}
    refused = p["refused"] or {}
    if host.stage == "create":
        items = [i for i in items if creates(i, host.declared, me)]
    results, failed = [], set()
    with host.batch():
        for item in items:
            blocked = [label for label in item.needs if label in failed]
            if blocked:
                failed.add(item.label)
                results.append(
                    dict(
                        item.key,
                        failed=True,
                        changed=False,
                        skipped=True,
                        msg=f"{item.label}: skipped: {', '.join(blocked)} failed",
                    )
                )
                continue
            point = host.checkpoint()
            try:
                problem = refused.get(_volume_key(item))
                if problem:
                    raise StorageError(problem)
                with host.object(
                    dict(item.params, identified_by=p["identified_by"]) if item.type == "ocfs2" else item.params
                ):
                    result = _create(host, item) if host.stage == "create" else item.converge(host)
                result["failed"] = False
            except StorageError as exc:
                failed.add(item.label)
                msg = exc.msg if exc.msg.startswith(item.label) or item.label in exc.msg else f"{item.label}: {exc.msg}"
                # A plan that failed undid itself (exc.left: what it could not); an object that failed
                # after its steps ran (a check of its details view) has them undone here.
                steps = host.steps_since(point)
                left = host.rollback(point)
                if steps:
                    msg += "; undone: " + ", ".join(reversed(steps))
                else:
                    left = list(exc.left)
                result = {"failed": True, "changed": bool(left), "msg": msg}
                if left:
                    result["left"] = left
            results.append(dict(item.key, **result))
        final = host.commit()
    outcome = {
        "changed": final["changed"] or any(r.get("changed") for r in results),
        "objects": results,
        "actions": final["actions"],
        "failed_objects": [r["kind"] + " " + _name(r) for r in results if r["failed"]],
    }
    if host.module._diff:
        outcome["diff"] = final["diffs"]
    return outcome


def creates(item, declared, me):
    """Whether ``me`` runs the create phase of ``item``: a present OCFS2 or Gluster volume of a storage whose first host it is."""
    if item.type not in ("ocfs2", "gluster") or item.params.get("state") != "present":
        return False
    hosts = (declared.get(item.params.get("image_storage")) or {}).get("hosts") or []
    return bool(hosts) and hosts[0] == me


def _name(result):
    return f"{result['image_storage']}/{result['name']}" if result["kind"] in VOLUME_TYPES else str(result["name"])


def _volume_key(item):
    return f"{item.params.get('image_storage')}/{item.params.get('name')}" if item.kind == "volume" else ""


def _create(host, item):
    """The create phase of one volume (first host of its storage): format or create; no registry, no mount."""
    p = host.params
    kind = item.type
    what = f"{'OCFS2' if kind == 'ocfs2' else 'Gluster'} volume {p['name']} of image storage {p['image_storage']}"
    storage = host.declared.get(p["image_storage"]) or {}
    root = storage.get("root") or os.path.join(_code("image_storage").DEFAULT_ROOT, p["image_storage"])
    mount_point = p["mount_point"] or os.path.join(root, p["name"])
    planner = _code(kind).plan_present

    def edit(_before, _after, plan):
        planner(host, plan, {"hosts": storage.get("hosts"), "root": root}, None, mount_point, what)

    result, _after = host.transaction(edit)
    return result


def identify(host, items):
    """Every OCFS2 volume this host converges: what it sees at the device (reads only)."""
    found = []
    for item in items:
        if item.type != "ocfs2" or item.params["state"] != "present":
            continue
        with host.object(dict(item.params, identify=True)):
            what = "OCFS2 volume {} of image storage {}".format(item.params["name"], item.params["image_storage"])
            try:
                report = _code("ocfs2").identify(host, what)["identity"]
            except StorageError as exc:
                report = {"image_storage": item.params["image_storage"], "name": item.params["name"], "error": exc.msg}
            report["hosts"] = (host.declared.get(item.params["image_storage"]) or {}).get("hosts")
            found.append({"identity": report})
    return {"changed": False, "actions": [], "results": found}
