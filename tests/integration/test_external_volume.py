"""external_volume for real on this host: directories and loop devices with ext4, xfs, btrfs."""

from __future__ import annotations

import json
import os

import pytest
from _state import fails_cleanly, mounts, registry, snapshot, three_runs

EV = "flexvdi.storage.external_volume"
IS = "flexvdi.storage.image_storage"


@pytest.fixture
def storage(run_module, tmp_paths):
    """A registered image storage S on this host; returns the common module args."""
    common = {"registry": tmp_paths["registry"], "fstab": tmp_paths["fstab"]}
    result = run_module(IS, dict(common, name="S", root=os.path.join(tmp_paths["root"], "S")))
    assert result["changed"] and not result.get("failed"), result
    return dict(common, image_storage="S")


def _dir(tmp_paths, name, mode=0o700):
    path = os.path.join(tmp_paths["root"], name)
    os.mkdir(path, mode)
    os.chmod(path, mode)
    return path


def test_plain_directory_qemu_access(run_module, tmp_paths, storage, qemu_user):
    path = _dir(tmp_paths, "images")
    args = dict(storage, name="V", mount_point=path)
    real = three_runs(run_module, EV, args, tmp_paths)
    volume = real["volume"]
    assert volume["status"] == "online"
    assert volume["mounted"] is False
    assert volume["qemu_writable"] is False, "a root-owned 0700 directory is not writable by qemu"
    assert "owner_qemu" in volume["message"]
    assert volume["fallocate"] is True
    assert volume["size"] > 0
    assert volume["free"] > 0
    assert registry(tmp_paths)["image_storages"]["S"]["volumes"]["V"]["mount_point"] == path

    real = three_runs(run_module, EV, dict(args, owner_qemu=True), tmp_paths)
    assert real["volume"]["qemu_writable"] is True
    assert any(f"set owner of {path} to {qemu_user}" in a for a in real["actions"])
    st = os.stat(path)
    import pwd

    assert st.st_uid == pwd.getpwnam(qemu_user).pw_uid
    assert sorted(os.listdir(path)) == [], "probes must leave no file behind"


@pytest.mark.parametrize(
    ("fstype", "reflink"),
    [("ext4", False), ("xfs", True), ("btrfs", True)],
)
def test_loop_device_mount_and_removal(run_module, tmp_paths, storage, loopdev, fstype, reflink):
    device = loopdev(fstype)
    mount_point = os.path.join(tmp_paths["root"], "vol-" + fstype)
    with open(tmp_paths["fstab"], encoding="utf-8") as handle:
        fstab_before = handle.read()
    args = dict(storage, name="V", mount_point=mount_point, src=device, owner_qemu=True)

    real = three_runs(run_module, EV, args, tmp_paths)
    assert mounts().get(mount_point) == fstype
    assert f"{device}\t{mount_point}\t{fstype}\tnofail\t0\t0" in open(tmp_paths["fstab"]).read()
    diff_files = [d["after_header"] for d in real["diff"]]
    assert diff_files == [tmp_paths["fstab"], tmp_paths["registry"]]
    volume = real["volume"]
    assert (volume["status"], volume["mounted"], volume["fstype"]) == ("online", True, fstype)
    assert volume["fallocate"] is True
    assert volume["reflink"] is reflink, f"reflink reported wrongly for {fstype}"
    assert volume["qemu_writable"] is True
    assert volume["size"] > 100 * 2**20

    # Images are listed with their format, and they block removal unless force.
    with open(os.path.join(mount_point, "g1.qcow2"), "wb") as handle:
        handle.write(b"QFI\xfb" + b"\0" * 1020)
    with open(os.path.join(mount_point, "g2.img"), "wb") as handle:
        handle.truncate(1 << 20)
    listed = run_module(EV, args)["volume"]["images"]
    assert [(i["name"], i["format"], i["size"]) for i in listed] == [
        ("g1.qcow2", "qcow2", 1024),
        ("g2.img", "raw", 1 << 20),
    ]
    assert listed[1]["allocated"] < listed[1]["size"], "a sparse image must show its allocated size"

    absent = dict(storage, name="V", state="absent")
    refused = fails_cleanly(run_module, EV, absent, tmp_paths, "holds 2 guest image(s) (g1.qcow2, g2.img)")
    assert "force: true" in refused["msg"]

    three_runs(run_module, EV, dict(absent, force=True), tmp_paths)
    assert mount_point not in mounts()
    assert open(tmp_paths["fstab"]).read() == fstab_before
    assert "V" not in registry(tmp_paths)["image_storages"]["S"]["volumes"]
    # Images are never deleted: they are on the (unmounted) filesystem still.
    remount = os.path.join(tmp_paths["root"], "check")
    os.mkdir(remount)
    os.system(f"mount {device} {remount}")
    try:
        assert sorted(os.listdir(remount)) == ["g1.qcow2", "g2.img"] or "lost+found" in os.listdir(remount)
        assert {"g1.qcow2", "g2.img"} <= set(os.listdir(remount))
    finally:
        os.system(f"umount {remount}")


def test_bind_mount_of_a_directory(run_module, tmp_paths, storage):
    src = _dir(tmp_paths, "export", 0o755)
    mount_point = os.path.join(tmp_paths["root"], "bound")
    real = three_runs(run_module, EV, dict(storage, name="B", mount_point=mount_point, src=src), tmp_paths)
    assert real["volume"]["mounted"] is True
    assert real["volume"]["status"] == "online"
    three_runs(run_module, EV, dict(storage, name="B", state="absent"), tmp_paths)
    assert mount_point not in mounts()


def test_require_mountpoint_online_when_mounted(run_module, tmp_paths, storage, loopdev):
    device = loopdev("ext4")
    mount_point = _dir(tmp_paths, "admin-mounted", 0o755)
    assert os.system(f"mount {device} {mount_point}") == 0
    real = three_runs(
        run_module, EV, dict(storage, name="M", mount_point=mount_point, require_mountpoint=True), tmp_paths
    )
    assert real["volume"]["status"] == "online"
    assert real["volume"]["mounted"] is True
    os.system(f"umount {mount_point}")
    info = run_module("flexvdi.storage.storage_info", {"registry": tmp_paths["registry"]})
    volume = info["image_storages"][0]["volumes"][0]
    assert volume["status"] == "offline"
    assert "require_mountpoint" in volume["message"]
    assert os.listdir(mount_point) == [], "nothing may be written under an unmounted mount point"


# ---- bad input: a clear error, changed false, nothing written ----


def test_missing_mount_point(run_module, tmp_paths, storage):
    missing = os.path.join(tmp_paths["root"], "nope")
    fails_cleanly(run_module, EV, dict(storage, name="V", mount_point=missing), tmp_paths, "does not exist on host")


def test_require_mountpoint_not_mounted(run_module, tmp_paths, storage):
    path = _dir(tmp_paths, "notmounted")
    result = fails_cleanly(
        run_module,
        EV,
        dict(storage, name="V", mount_point=path, require_mountpoint=True, owner_qemu=True),
        tmp_paths,
        "is not a mount point and require_mountpoint is true",
    )
    assert "nothing was written" in result["msg"]


def test_src_does_not_exist(run_module, tmp_paths, storage):
    args = dict(storage, name="V", mount_point=os.path.join(tmp_paths["root"], "m"), src="/dev/disk/by-id/nope")
    fails_cleanly(run_module, EV, args, tmp_paths, "is not a block device present on this host: fix src")


def test_unknown_image_storage(run_module, tmp_paths, storage):
    path = _dir(tmp_paths, "images")
    fails_cleanly(
        run_module,
        EV,
        dict(storage, image_storage="Nope", name="V", mount_point=path),
        tmp_paths,
        "image storage Nope is not registered on this host",
    )


def test_corrupt_registry_is_left_alone(run_module, tmp_paths, storage):
    with open(tmp_paths["registry"], "w") as handle:
        handle.write('{"schema_version": 1, "image_storages": ')
    path = _dir(tmp_paths, "images")
    fails_cleanly(run_module, EV, dict(storage, name="V", mount_point=path), tmp_paths, "is corrupt")
    fails_cleanly(run_module, IS, {"registry": tmp_paths["registry"], "name": "T"}, tmp_paths, "is corrupt")


def test_ext4_block_device_on_two_host_storage(run_module, tmp_paths, storage, loopdev):
    device = loopdev("ext4")
    data = json.load(open(tmp_paths["registry"]))
    data["image_storages"]["S"]["hosts"] = ["localhost", "node2"]
    with open(tmp_paths["registry"], "w") as handle:
        json.dump(data, handle)
    args = dict(storage, name="LUN", mount_point=os.path.join(tmp_paths["root"], "lun"), src=device)
    result = fails_cleanly(run_module, EV, args, tmp_paths, "ext4, which is not a cluster filesystem")
    assert "OCFS2" in result["msg"]
    assert "shared: false" in result["msg"]
    # Each host its own, different disk: allowed when said explicitly.
    three_runs(run_module, EV, dict(args, shared=False), tmp_paths)


def test_failed_mount_is_rolled_back(run_module, tmp_paths, storage, loopdev):
    device = loopdev("ext4")
    mount_point = os.path.join(tmp_paths["root"], "a", "b")
    args = dict(storage, name="V", mount_point=mount_point, src=device, fstype="xfs")
    result = fails_cleanly(run_module, EV, args, tmp_paths, "failed")
    assert "undone: update {}, create directory {}".format(tmp_paths["fstab"], mount_point) in result["msg"]
    assert not os.path.exists(os.path.join(tmp_paths["root"], "a"))


def test_fstype_without_src(run_module, tmp_paths, storage):
    path = _dir(tmp_paths, "images")
    fails_cleanly(
        run_module, EV, dict(storage, name="V", mount_point=path, fstype="nfs"), tmp_paths, "only apply with src"
    )


def test_same_mount_point_twice(run_module, tmp_paths, storage):
    path = _dir(tmp_paths, "images")
    assert run_module(EV, dict(storage, name="V1", mount_point=path))["changed"]
    fails_cleanly(run_module, EV, dict(storage, name="V2", mount_point=path), tmp_paths, "is already volume V1")


def test_snapshot_sees_changes(tmp_paths):
    """The harness itself can fail: a change under root is seen."""
    before = snapshot(tmp_paths)
    os.mkdir(os.path.join(tmp_paths["root"], "x"))
    assert snapshot(tmp_paths) != before
