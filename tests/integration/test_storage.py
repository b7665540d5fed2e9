"""flexvdi.storage.storage: a host's whole declaration in one module run, for real on this host.

One pass: check mode predicts the run object by object on a fresh host (an image storage the run
creates, with its volumes), the registry and fstab are written once, a failed object is undone
alone while the others converge, and a declaration with argument errors is refused whole.
"""

from __future__ import annotations

import os

from _state import mounts, registry, snapshot

ST = "flexvdi.storage.storage"


def _declaration(tmp_paths, loop, bad_src=None):
    root = os.path.join(tmp_paths["root"], "S")
    plain = os.path.join(tmp_paths["root"], "plain")
    os.makedirs(plain, exist_ok=True)
    volumes = [
        {"name": "Plain", "type": "external", "mount_point": plain, "owner_qemu": True},
        {"name": "Loop", "type": "external", "mount_point": os.path.join(tmp_paths["root"], "loop"), "src": loop},
    ]
    if bad_src:
        volumes.append(
            {"name": "Bad", "type": "external", "mount_point": os.path.join(tmp_paths["root"], "bad"), "src": bad_src}
        )
    return {
        "registry": tmp_paths["registry"],
        "fstab": tmp_paths["fstab"],
        "image_storages": [{"name": "S", "hosts": ["localhost"], "root": root, "volumes": volumes}],
    }


def _by_object(result):
    return {
        (o["image_storage"] if o["kind"] in ("external", "ocfs2", "gluster") else None, o["name"]): o
        for o in result["objects"]
    }


def test_check_mode_predicts_the_run_object_by_object_on_a_fresh_host(run_module, tmp_paths, loopdev):
    args = _declaration(tmp_paths, loopdev("ext4"))
    before = snapshot(tmp_paths)
    checked = run_module(ST, args, check=True, diff=True)
    assert not checked.get("failed"), checked.get("msg")
    assert snapshot(tmp_paths) == before, "check mode wrote something"
    real = run_module(ST, args, diff=True)
    assert not real.get("failed"), real.get("msg")
    predicted, done = _by_object(checked), _by_object(real)
    assert list(predicted) == list(done) == [(None, "S"), ("S", "Plain"), ("S", "Loop")]
    for key, result in done.items():
        assert result["changed"] and predicted[key]["changed"], key
        assert predicted[key]["actions"] == result["actions"], key
    assert checked["actions"] == real["actions"]
    assert sorted(registry(tmp_paths)["image_storages"]["S"]["volumes"]) == ["Loop", "Plain"]
    assert mounts().get(os.path.join(tmp_paths["root"], "loop")) == "ext4"
    again = run_module(ST, args)
    assert not again.get("failed") and not again["changed"], again
    assert [o["changed"] for o in again["objects"]] == [False, False, False]


def test_a_failed_volume_is_undone_alone_and_the_others_converge(run_module, tmp_paths, loopdev):
    # A device with no filesystem: its mount fails after its mount point was created.
    args = _declaration(tmp_paths, loopdev("ext4"), bad_src=loopdev("none"))
    result = run_module(ST, args)
    assert result.get("failed"), result
    objects = _by_object(result)
    assert objects[("S", "Bad")]["failed"] and "volume Bad of image storage S" in result["msg"]
    assert not objects[("S", "Loop")]["failed"] and objects[("S", "Loop")]["changed"]
    assert result["failed_objects"] == ["external S/Bad"]
    assert sorted(registry(tmp_paths)["image_storages"]["S"]["volumes"]) == ["Loop", "Plain"]
    with open(tmp_paths["fstab"], encoding="utf-8") as handle:
        fstab = handle.read()
    assert os.path.join(tmp_paths["root"], "loop") in fstab
    assert os.path.join(tmp_paths["root"], "bad") not in fstab
    assert not os.path.exists(os.path.join(tmp_paths["root"], "bad")), "the failed volume's directory stayed"


def test_a_declaration_with_errors_is_refused_whole_naming_each(run_module, tmp_paths, loopdev):
    args = _declaration(tmp_paths, loopdev("ext4"))
    args["image_storages"][0]["volumes"] += [
        {"name": "bad name", "type": "external", "mount_point": "/srv/x"},
        {"name": "NoPoint", "type": "external"},
        {"name": "O", "type": "ocfs2", "device": "/dev/disk/by-id/x", "slots": "many"},
    ]
    args["direct_storages"] = [{"name": "D", "device": "/dev/sdb", "colour": "red"}]
    before = snapshot(tmp_paths)
    result = run_module(ST, args)
    assert result.get("failed")
    assert snapshot(tmp_paths) == before
    for words in ("'bad name'", "volume NoPoint of image storage S", "slots", "direct storage D", "colour"):
        assert words in result["msg"], (words, result["msg"])


def test_a_volume_qemu_cannot_write_fails_alone_and_its_steps_are_undone(run_module, tmp_paths, loopdev):
    """owner_qemu under a root-owned 0700 parent: chowned and registered, then found unusable by qemu;
    the pass undoes its own steps (the chown) and drops it, the other volumes converge."""
    args = _declaration(tmp_paths, loopdev("ext4"))
    parent = os.path.join(tmp_paths["root"], "private")
    os.mkdir(parent, 0o700)
    os.chmod(parent, 0o700)
    blocked = os.path.join(parent, "images")
    os.mkdir(blocked)
    args["image_storages"][0]["volumes"].append(
        {"name": "Blocked", "type": "external", "mount_point": blocked, "owner_qemu": True}
    )
    result = run_module(ST, args)
    assert result.get("failed") and result["failed_objects"] == ["external S/Blocked"], result
    failure = _by_object(result)[("S", "Blocked")]
    assert parent in failure["msg"] and "undone: set owner of " + blocked in failure["msg"], failure["msg"]
    assert not failure["changed"] and "left" not in failure
    assert os.stat(blocked).st_uid == 0, "the chown was not undone"
    assert sorted(registry(tmp_paths)["image_storages"]["S"]["volumes"]) == ["Loop", "Plain"]
