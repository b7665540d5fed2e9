# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Direct storages: one host's physical disk, given whole to guests. Private to the collection.

A direct storage is registered on the one host that owns the disk. Registering writes nothing
to the disk: it checks that the host does not use it (mounted, active swap, held by LVM, RAID,
multipath or dm-crypt, the device of a registered volume or another direct storage), that it
is a whole disk, and that it carries no data (a signature or partitions) unless ``force``;
then it writes a udev rule, keyed by what identifies the disk at every boot (its WWN or
serial number from sysfs; for a multipath map, its device-mapper UUID; for a loop device, its
backing file: ``_blockdev.udev_match``), that gives the disk to the
qemu user, makes udev apply it now (``udevadm trigger --settle``), and verifies that the
qemu user can open the disk before the registry records it. ``absent`` removes the rule,
lets udev apply the system's own rules again, and unregisters; the disk's data is untouched.
"""

from __future__ import annotations

import os

from ._blockdev import (
    describe_signature,
    holders,
    is_by_id,
    model,
    partitions,
    refuse_multipath_path,
    resolve_device,
    signature,
    sysfs_identity,
    udev_match,
)
from ._errors import StorageError
from ._fileio import atomic_write, read_text
from ._qemu import device_access
from ._validate import check_name

RULES_DIR = "/etc/udev/rules.d"
UDEV_CONTROL = "/run/udev/control"  # the socket of a running systemd-udevd
SETTLE_TIMEOUT = 30  # seconds udev may take to apply the rules to one disk
# The group Debian's own udev rules give every disk; the rule keeps it.
DISK_GROUP = "disk"
_GLOB = "*?[]|"


def rule_path(rules_dir, name):
    """The rule file of direct storage ``name``: after 60-persistent-storage, before 99-systemd."""
    return os.path.join(rules_dir, f"90-flexvdi-direct-{name}.rules")


def rule_text(name, device, key, value, qemu_user):
    """The udev rule: the whole disk whose ``key`` is ``value`` belongs to the qemu user.

    udev matches are glob patterns: a glob character in ``value`` becomes ``?`` (which matches
    it too). A quote, a backslash or a control character cannot be written in a rule.
    """
    pattern = "".join("?" if char in _GLOB else char for char in value)
    return (
        f"# flexvdi.storage: direct storage {name} ({device}), given to the qemu user {qemu_user}.\n"
        "# Written by flexvdi.storage.direct_storage, which rewrites or removes it: do not edit.\n"
        f'ACTION!="remove", SUBSYSTEM=="block", ENV{{DEVTYPE}}=="disk", {key}=="{pattern}", '
        f'OWNER="{qemu_user}", GROUP="{DISK_GROUP}", MODE="0660"\n'
    )


def udev_running():
    return os.path.exists(UDEV_CONTROL)


# --- the module ----------------------------------------------------------------------------


def converge(host):
    p = host.params
    name = check_name(p["name"], "name")
    what = f"direct storage {name}"
    owner = p["host"] or host.hostname
    if p["state"] == "present" and not (is_by_id(p["device"]) and p["device"].isprintable()):
        raise StorageError(
            f"{what}: device {p['device']!r} is not a name in /dev/disk/by-id: kernel names such as /dev/sdb "
            "change between boots: fix device, giving the disk's /dev/disk/by-id/... name (ls -l /dev/disk/by-id)"
        )
    rule = rule_path(p["udev_rules_dir"], name)

    def edit(before, after, plan):
        existing = before["direct_storages"].get(name)
        if p["state"] == "present" and owner == host.hostname:
            after["direct_storages"][name] = _plan_present(host, plan, before, existing, rule, what)
        elif existing is not None:
            # absent, or the declaration now gives the disk of another host: not this host's any more.
            _plan_removal(host, plan, existing, what)
            del after["direct_storages"][name]

    result, after = host.transaction(edit)
    record = after["direct_storages"].get(name)
    if record is not None:
        result["direct_storage"] = status(host, name, record)
    else:
        result["direct_storage"] = {"name": name, "host": owner, "status": "absent"}
    return result


def _plan_present(host, plan, registry, existing, rule, what):
    p = host.params
    device, me = p["device"], host.hostname
    found = sysfs_identity(device)
    if not found["present"]:
        raise StorageError(
            f"{what}: device {device} is missing on host {me} (not attached, a typo, or the disk of another "
            "host): fix device, or host"
        )
    kernel = found["kernel_name"]
    if not found["block"]:
        raise StorageError(f"{what}: device {device} ({kernel}) is not a block device: fix device")
    if found["partition"]:
        raise StorageError(
            f"{what}: device {device} ({kernel}) is a partition, not a whole disk: a direct storage is a whole "
            "disk; set device to the disk's /dev/disk/by-id name"
        )
    refuse_multipath_path(device, kernel, what)
    known = existing is not None and existing.get("device") == device
    problems = in_use(host, registry, kernel, p["name"])
    if problems and not known:
        raise StorageError(
            f"{what}: device {device} ({kernel}) {problems[0]}; a disk this host uses is never given to a guest, "
            "force or not. Nothing was written"
        )
    plan.warnings.extend(f"{what}: device {device} ({kernel}) {problem}" for problem in problems)
    key = udev_match(kernel)
    if key is None:
        raise StorageError(
            f"{what}: device {device} ({kernel}) has no WWN and no serial number in sysfs, so no udev rule can "
            "recognise it after a reboot (its kernel name may then be another disk's): give the disk a serial "
            "(for a virtio disk, serial=...), or choose another device. Nothing was written"
        )
    if any(char in key[1] for char in '"\\') or not key[1].isprintable():
        raise StorageError(
            f"{what}: device {device} ({kernel}) has the identity {key[0]}={key[1]!r}, which a udev rule cannot "
            "match (a quote, a backslash or a control character): choose another device"
        )
    if not known and not p["force"]:
        carries = _carries(host, kernel, what)
        if carries:
            raise StorageError(
                f"{what}: device {device} ({kernel}) {carries}: a guest would get that data, and the host may "
                f"use it. Registering writes nothing to the disk: set force: true to give it to guests as it "
                f"is, or wipe it first (wipefs -a {kernel}). Nothing was written"
            )
    qemu = host.qemu_user(required=True)
    text = rule_text(p["name"], device, key[0], key[1], qemu.name)
    old_rule = (existing or {}).get("rule")
    if old_rule and old_rule != rule and os.path.exists(old_rule):
        _plan_remove_rule(host, plan, old_rule, None, what)
    before = read_text(rule, default="")
    if before != text or not device_access(kernel, qemu)[0]:
        if not udev_running():
            raise StorageError(
                f"{what}: udev is not running on host {me} ({UDEV_CONTROL} is missing), so no rule can give the "
                "qemu user the disk now or at the next boot: start systemd-udevd. Nothing was written"
            )
        plan.mkdirs(os.path.dirname(rule))
        plan.write_file(
            rule,
            before,
            text,
            lambda: atomic_write(rule, text, mode=0o644),
            lambda: _restore(host, rule, before, kernel, what),
        )

        def apply_and_verify():
            apply_rules(host, kernel, what)
            ok, message = device_access(kernel, qemu)
            if not ok:
                raise StorageError(f"udev applied {rule}, yet {message}")

        # Nothing to undo here: restoring the rule file (the step before) applies the old rules again.
        plan.add(
            f"apply udev rules to {kernel} (udevadm control --reload, trigger --settle) and verify that the "
            f"qemu user {qemu.name} can open it",
            apply_and_verify,
            lambda: None,
        )
    return {
        "host": me,
        "device": device,
        "rule": rule,
        "match": f"{key[0]}=={key[1]}",
        "wwn": found["wwn"],
        "serial": found["serial"],
        "qemu_user": qemu.name,
    }


def in_use(host, registry, kernel, name):
    """Why this host uses the disk ``kernel`` (or a partition of it): reasons, each with its fix."""
    nodes = {kernel, *partitions(kernel)}
    found = []
    for storage_name, storage in sorted(registry["image_storages"].items()):
        for volume, record in sorted(storage.get("volumes", {}).items()):
            source = record.get("src") or record.get("device") or ""
            if source and resolve_device(source) in nodes:
                found.append(
                    f"is the device of volume {volume} of image storage {storage_name}: remove that volume first"
                )
    for other, record in sorted(registry["direct_storages"].items()):
        if other != name and resolve_device(record.get("device") or "") in nodes:
            found.append(f"is already direct storage {other}: use that name, or remove it first")
    for mount in host.mounts:
        if mount.source.startswith("/dev/") and resolve_device(mount.source) in nodes:
            found.append(f"is mounted at {mount.mount_point} ({mount.source}): unmount it and drop it from fstab")
    for swap in active_swaps():
        if resolve_device(swap) in nodes:
            found.append(f"is active swap ({swap}): swapoff it and drop it from fstab")
    for holder in holders(kernel):
        found.append(
            f"is held by {holder}{_dm_name(holder)} (LVM, RAID, multipath or dm-crypt): deactivate and remove that first"
        )
    return found


def direct_storage_of(registry, source):
    """The name of the registered direct storage whose disk ``source`` is, or is a partition of; else None.

    Volumes ask it before they mount a device: a disk given to guests is never the host's.
    """
    node = resolve_device(source) if source else None
    if node is None:
        return None
    for name, record in sorted(registry["direct_storages"].items()):
        disk = resolve_device(record.get("device") or "")
        if disk is not None and (node == disk or node in partitions(disk)):
            return name
    return None


def active_swaps(path="/proc/swaps"):
    """The devices and files in use as swap (/proc/swaps)."""
    lines = read_text(path, default="").splitlines()[1:]
    return [line.split()[0].replace("\\040", " ") for line in lines if line.split()]


def _dm_name(holder):
    name = read_text(f"/sys/block/{os.path.basename(holder)}/dm/name", default="").strip()
    return f" ({name})" if name else ""


def _carries(host, kernel, what):
    """What data the disk carries, in words ('' when blank): partitions, LVM, RAID, a filesystem..."""
    parts = partitions(kernel)
    if parts:
        return "holds partitions ({})".format(", ".join(parts))
    sig = signature(host.runner, kernel, what)
    if not sig:
        return ""
    kind = sig.get("type", "")
    if kind == "LVM2_member":
        return "is an LVM physical volume (LVM2_member)"
    if kind == "linux_raid_member":
        return "is a RAID member (linux_raid_member)"
    if kind == "swap":
        return "is formatted as swap"
    return "carries " + describe_signature(sig)


def apply_rules(host, kernel, what):
    """Have udev read its rules again and apply them to ``kernel`` now; wait until it has.

    ``trigger --settle`` waits for the event it triggered only (systemd 238 and later), where
    ``udevadm settle`` waits for udev's whole queue: on a hypervisor starting guests (taps,
    device-mapper maps) that queue is busy, and the wait is neither this disk's nor bounded by it.
    """
    host.runner.run(["udevadm", "control", "--reload"], what)
    host.runner.run(["udevadm", "trigger", "--settle", "--action=change", kernel], what, timeout=SETTLE_TIMEOUT)


def _restore(host, rule, text, kernel, what, qemu_user=None):
    """Put the rule file back as it was ('' means: there was none) and apply the rules again.

    udev's own rules set a disk's group and mode, never its owner: once our rule is gone the
    disk would stay the qemu user's until the next boot (devtmpfs creates nodes owned by root),
    so a disk still owned by ``qemu_user`` is given back to root now.
    """
    if text:
        atomic_write(rule, text, mode=0o644)
    elif os.path.exists(rule):
        os.unlink(rule)
    if kernel and udev_running() and os.path.exists(kernel):
        apply_rules(host, kernel, what)
        if not text and qemu_user is not None and os.stat(kernel).st_uid == qemu_user.uid:
            os.chown(kernel, 0, -1)


def _plan_remove_rule(host, plan, rule, kernel, what):
    text = read_text(rule, default="")
    plan.diffs.append({"before_header": rule, "after_header": rule, "before": text, "after": ""})
    qemu = host.qemu_user(required=False)

    def do():
        _restore(host, rule, "", kernel, what, qemu)

    def undo():
        _restore(host, rule, text, kernel, what)

    words = f" and apply the system's rules to {kernel} (owner root)" if kernel else ""
    plan.add(f"remove udev rule {rule}{words}", do, undo)


def _plan_removal(host, plan, existing, what):
    """Drop the rule (udev then applies the system's own rules to the disk); the data stays."""
    rule = existing.get("rule")
    if rule and os.path.exists(rule):
        kernel = resolve_device(existing.get("device") or "")
        _plan_remove_rule(host, plan, rule, kernel if kernel and udev_running() else None, what)


# --- status --------------------------------------------------------------------------------


def status(host, name, record, probe=True):
    """The details view of a direct storage on its host: device, kernel name, size, model, serial, qemu access."""
    device = record.get("device")
    found = sysfs_identity(device) if device else {"present": False, "block": False, "kernel_name": None}
    kernel = found["kernel_name"] if found["block"] else None
    rule = record.get("rule")
    info = {
        "name": name,
        "host": record.get("host"),
        "device": device,
        "kernel_name": kernel,
        "size": found.get("size"),
        "model": model(kernel) if kernel else "",
        "serial": found.get("serial") or record.get("serial") or "",
        "wwn": found.get("wwn") or record.get("wwn") or "",
        "rule": rule,
        "rule_present": bool(rule) and os.path.exists(rule),
        "qemu_access": None,
        "status": "online",
        "message": "",
    }
    if kernel is None:
        info.update(status="offline", message=f"{device} is missing on this host")
        return info
    if not info["rule_present"]:
        info.update(status="offline", message=f"udev rule {rule} is missing: converge it again")
    if probe:
        qemu = host.qemu_user(required=False)
        if qemu is None:
            info.update(status="offline", message="no qemu user on this host")
        else:
            info["qemu_access"], message = device_access(kernel, qemu)
            if not info["qemu_access"]:
                info.update(status="offline", message="; ".join(m for m in (info["message"], message) if m))
    mounted = [m.mount_point for m in host.mounts if m.source.startswith("/dev/") and _on(m.source, kernel)]
    if mounted:
        info.update(
            status="error",
            message=f"{kernel} is mounted on this host at {mounted[0]}: the host and a guest writing one disk "
            "corrupt it; unmount it",
        )
    return info


def _on(source, kernel):
    node = resolve_device(source)
    return node == kernel or node in partitions(kernel)
