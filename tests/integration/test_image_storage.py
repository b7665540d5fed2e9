"""image_storage for real: registration, hosts no longer listed, absent with volumes."""

from __future__ import annotations

import os

from _state import fails_cleanly, mounts, registry, three_runs

IS = "flexvdi.storage.image_storage"
EV = "flexvdi.storage.external_volume"


def test_register_then_drop_from_unlisted_host(run_module, tmp_paths, loopdev):
    common = {"registry": tmp_paths["registry"], "fstab": tmp_paths["fstab"]}
    root = os.path.join(tmp_paths["root"], "S")
    real = three_runs(run_module, IS, dict(common, name="S", root=root), tmp_paths)
    assert real["image_storage"] == {"name": "S", "member": True, "hosts": ["localhost"], "root": root, "volumes": []}
    assert os.path.isdir(root)
    assert [d["after_header"] for d in real["diff"]] == [tmp_paths["registry"]]

    device = loopdev("xfs")
    mount_point = os.path.join(root, "V")
    assert run_module(EV, dict(common, image_storage="S", name="V", mount_point=mount_point, src=device))["changed"]
    assert mount_point in mounts()

    # absent refuses while volumes remain
    fails_cleanly(
        run_module, IS, dict(common, name="S", state="absent"), tmp_paths, "still has volumes on this host (V)"
    )

    # The same task over the whole inventory, this host no longer listed: volume unmounted, storage dropped.
    dropped = three_runs(run_module, IS, dict(common, name="S", root=root, hosts=[]), tmp_paths)
    assert dropped["image_storage"]["member"] is False
    assert f"unmount {mount_point} (volume V of image storage S)" in dropped["actions"]
    assert mount_point not in mounts()
    assert registry(tmp_paths)["image_storages"] == {}
    with open(tmp_paths["fstab"]) as handle:
        assert device not in handle.read()


def test_hosts_must_be_in_inventory(run_module, tmp_paths):
    args = {"registry": tmp_paths["registry"], "name": "S", "hosts": ["localhost", "ghost"]}
    fails_cleanly(run_module, IS, args, tmp_paths, "hosts lists ghost, not in the inventory")
    args["hosts"] = ["localhost", "localhost"]
    fails_cleanly(run_module, IS, args, tmp_paths, "more than once")


def test_bad_name(run_module, tmp_paths):
    fails_cleanly(
        run_module, IS, {"registry": tmp_paths["registry"], "name": "../etc"}, tmp_paths, "is not a valid name"
    )
