"""OCFS2 volumes: options, the mkfs command line, what a host decides, the parsers, the plan and record.

The planning tests drive the module's own converge() in check mode on a fake module whose
commands (blkid, debugfs.ocfs2, mkfs.ocfs2 --dry-run) answer from a table, with the device
and its superblock stubbed: no device, mount or format is touched.
"""

from __future__ import annotations

import json
import random
import re
import struct

import pytest
from _fakes import FakeModule

from ansible_collections.flexvdi.storage.plugins.module_utils import _host, _ocfs2, _registry, _volumes
from ansible_collections.flexvdi.storage.plugins.module_utils._errors import StorageError
from ansible_collections.flexvdi.storage.plugins.module_utils._host import Host
from ansible_collections.flexvdi.storage.plugins.module_utils._mounts import MountInfo
from ansible_collections.flexvdi.storage.plugins.module_utils._ocfs2 import (
    Decision,
    check_cluster_name,
    check_device,
    check_label,
    check_slots,
    decide,
    default_label,
    default_slots,
    mkfs_argv,
    mount_options,
    parse_debugfs,
    parse_mounted,
    parse_superblock,
    tunefs_slots_argv,
)
from ansible_collections.flexvdi.storage.plugins.module_utils._plan import Plan
from ansible_collections.flexvdi.storage.plugins.module_utils._qemu import QemuUser

DEV = "/dev/disk/by-id/wwn-0x6001405abcdef"
AFTER = "x-systemd.after=o2cb.service,x-systemd.after=ocfs2.service"
WHAT = "OCFS2 volume V of image storage S"


# --- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("storage", "name", "label"),
    [
        ("S", "V", "S.V"),
        ("MyImageStorage", "SAN1", "MyImageStorage.SAN1"),
        ("s" * 31, "v" * 31, "s" * 31 + "." + "v" * 31),  # 63: fits
    ],
)
def test_default_label_is_storage_dot_name(storage, name, label):
    assert default_label(storage, name) == label


def test_long_default_labels_are_cut_with_a_hash_of_the_whole():
    long_a = default_label("s" * 64, "a" * 64)
    long_b = default_label("s" * 64, "b" * 64)
    assert len(long_a) == len(long_b) == 63
    assert long_a != long_b, "two volumes whose names share a prefix get different labels"
    assert long_a == default_label("s" * 64, "a" * 64), "the same on every host and run"
    check_label(long_a, WHAT)


@pytest.mark.parametrize("label", ["", "a" * 64, "has space", "-leading", "slash/no", "new\nline"])
def test_bad_labels_name_the_option(label):
    with pytest.raises(StorageError, match="fix label"):
        check_label(label, WHAT)


@pytest.mark.parametrize("label", ["a" * 63, "S.V", "flexvdi:san_1+a-b"])
def test_good_labels(label):
    assert check_label(label, WHAT) == label


@pytest.mark.parametrize("name", ["", "a" * 17, "flex-vdi", "flex_vdi", "clu ster", None])
def test_bad_cluster_names(name):
    with pytest.raises(StorageError, match="1 to 16 letters and digits.*fix cluster_name"):
        check_cluster_name(name, WHAT)


@pytest.mark.parametrize("name", ["flexvdi", "a" * 16, "Lab2"])
def test_good_cluster_names(name):
    assert check_cluster_name(name, WHAT) == name


@pytest.mark.parametrize(
    ("hosts", "slots"),
    [(["n1"], 2), (["n1", "n2"], 3), (["n%d" % i for i in range(4)], 5), (["n%d" % i for i in range(300)], 255)],
)
def test_default_slots_are_hosts_plus_one(hosts, slots):
    assert default_slots(hosts) == slots


@pytest.mark.parametrize(
    ("slots", "hosts", "message"),
    [
        (1, ["n1", "n2"], "slots 1 is fewer than the 2 hosts of its image storage \\(n1, n2\\).*at least 2"),
        (2, ["n1", "n2", "n3"], "set slots to at least 3"),
        (0, ["n1"], "from 1 to 255: fix slots"),
        (256, ["n1"], "from 1 to 255: fix slots"),
        (True, ["n1"], "from 1 to 255: fix slots"),
    ],
)
def test_slots_never_fewer_than_hosts(slots, hosts, message):
    with pytest.raises(StorageError, match=message):
        check_slots(slots, hosts, WHAT)


def test_slots_equal_to_hosts_are_fine():
    assert check_slots(2, ["n1", "n2"], WHAT) == 2


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("/dev/sdb", "is not a /dev/disk/by-id/ name.*kernel names such as /dev/sdb change.*fix device"),
        ("/dev/disk/by-uuid/1234", "is not a /dev/disk/by-id/ name"),
        ("/dev/disk/by-id/", "is not a /dev/disk/by-id/ name"),
        ("/dev/disk/by-id/../../sdb", "is not a /dev/disk/by-id/ name"),
        ("sdb", "must be an absolute /dev/disk/by-id/ path: fix device"),
        ("/dev/disk/by-id/x\ny", "must be an absolute"),
    ],
)
def test_device_must_be_a_by_id_name(device, message):
    with pytest.raises(StorageError, match=message):
        check_device(device, WHAT)


def test_by_id_names_are_accepted_even_when_absent():
    """Absence is the converge's (and the identity comparison's) business, with its own words."""
    assert check_device(DEV, WHAT) == DEV


@pytest.mark.parametrize(
    ("opts", "options"),
    [
        ("_netdev,noatime", ["_netdev", "noatime", *AFTER.split(",")]),
        ("noatime", ["_netdev", "noatime", *AFTER.split(",")]),
        ("noatime,_netdev,nofail", ["noatime", "_netdev", "nofail", *AFTER.split(",")]),
        (f"{AFTER},noatime", ["_netdev", *AFTER.split(","), "noatime"]),
    ],
)
def test_netdev_and_the_order_after_o2cb_are_always_there(opts, options):
    """At boot, a mount not ordered after o2cb.service fails before the cluster is registered."""
    assert mount_options(opts, WHAT) == options


def test_bad_mount_opts_name_the_option():
    with pytest.raises(StorageError, match="mount_opts .*: fix mount_opts"):
        mount_options("noatime, _netdev", WHAT)


# --- the command lines -------------------------------------------------------------------------


def test_mkfs_command_line():
    assert mkfs_argv("/dev/sdb", "S.V", 3, "flexvdi") == [
        "mkfs.ocfs2",
        "-q",
        "-T",
        "vmstore",
        "-N",
        "3",
        "-L",
        "S.V",
        "--cluster-stack=o2cb",
        "--cluster-name=flexvdi",
        "--",
        "/dev/sdb",
    ]


def test_mkfs_dry_run_is_the_same_command_plus_dry_run():
    real = mkfs_argv("/dev/sdb", "S.V", 3, "flexvdi")
    dry = mkfs_argv("/dev/sdb", "S.V", 3, "flexvdi", dry_run=True)
    assert dry == real[:-2] + ["--dry-run"] + real[-2:]


def test_tunefs_command_line():
    assert tunefs_slots_argv(DEV, 4) == ["tunefs.ocfs2", "-y", "-N", "4", DEV]


# --- the superblock and the tools' outputs -----------------------------------------------------


def superblock_bytes(label="S.V", slots=3, incompat=0x1000 | 0x4000, stack=b"o2cb", cluster=b"flexvdi", uuid=None):
    data = bytearray(1024)
    data[0:6] = b"OCFSV2"
    struct.pack_into("<I", data, 0xC0 + 0x20, incompat)
    struct.pack_into("<H", data, 0xC0 + 0x40, slots)
    data[0xC0 + 0x50 : 0xC0 + 0x50 + len(label)] = label.encode()
    data[0xC0 + 0x90 : 0xC0 + 0xA0] = uuid or bytes(range(16))
    data[0xC0 + 0xA0 : 0xC0 + 0xA0 + len(stack)] = stack
    data[0xC0 + 0xA8 : 0xC0 + 0xA8 + len(cluster)] = cluster
    return bytes(data)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            superblock_bytes(),
            {"label": "S.V", "slots": 3, "local": False, "refcount": True, "stack": "o2cb", "cluster": "flexvdi"},
        ),
        (
            superblock_bytes(label="x", slots=2, incompat=0x0008 | 0x1000, stack=b"", cluster=b""),
            {"label": "x", "slots": 2, "local": True, "refcount": True, "stack": "", "cluster": ""},
        ),
        (  # classic o2cb: no cluster info on the disk, whatever the bytes say
            superblock_bytes(incompat=0, stack=b"o2cb", cluster=b"other"),
            {"label": "S.V", "slots": 3, "local": False, "refcount": False, "stack": "", "cluster": ""},
        ),
    ],
)
def test_parse_superblock(raw, expected):
    found = parse_superblock(raw)
    assert found.pop("uuid") == bytes(range(16)).hex().upper()
    assert found == expected


DEBUGFS = """\
debugfs: slotmap
\tSlot#   Node#
\t     0       1
\t     1       2
debugfs: ls -l /
\t65              drwxr-xr-x   3     0     0            3896 26-Nov-2026 09:01 .
\t65              drwxr-xr-x   3     0     0            3896 26-Nov-2026 09:01 ..
\t102017          drwxr-xr-x   2     0     0            3896 26-Nov-2026 09:01 lost+found
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DEBUGFS, {"slots_used": 2, "root": [".", "..", "lost+found"]}),
        ("debugfs: slotmap\n\tSlot#   Node#\ndebugfs: ls -l /\n", {"slots_used": 0, "root": []}),
        ("", {"slots_used": None, "root": []}),
    ],
)
def test_parse_debugfs(text, expected):
    assert parse_debugfs(text) == expected


MOUNTED = """\
Device      Stack  Cluster  F  Nodes
/dev/sdb    o2cb   lab         node1, node2
/dev/sdc    o2cb   lab         Not mounted
"""


@pytest.mark.parametrize(
    ("device", "nodes"),
    [("/dev/sdb", ["node1", "node2"]), ("/dev/sdc", []), ("/dev/sdd", None)],
)
def test_parse_mounted(device, nodes):
    # mounted.ocfs2 may print its table more than once (a library that forks); the first answer counts.
    assert parse_mounted(MOUNTED + MOUNTED, device) == nodes


# --- what a host decides -----------------------------------------------------------------------

WANT = {"label": "S.V", "slots": 3, "cluster_name": "flexvdi"}
OURS = {"type": "ocfs2", "label": "S.V", "uuid": "u1"}
SB = {"label": "S.V", "uuid": "U1", "slots": 3, "local": False, "refcount": True, "stack": "o2cb", "cluster": "flexvdi"}
TWO = ("n1", "n2")


def _decide(sig, sb=None, complete=True, hosts=TWO, me="n1", mounted=False, force=False, grow=False):
    return decide(DEV, sig, sb, complete, WANT, list(hosts), me, mounted, force, grow)


@pytest.mark.parametrize(
    ("kwargs", "action", "words"),
    [
        # a blank device: the designated host (the first declared) formats, the others wait
        ({"sig": {}}, "format", "is blank"),
        ({"sig": {}, "me": "n2"}, "wait", "n1 formats it"),
        # our label: adopted, never formatted again, force or not
        ({"sig": OURS, "sb": SB}, "adopt", "labelled S.V"),
        ({"sig": OURS, "sb": SB, "force": True}, "adopt", "labelled S.V"),
        ({"sig": OURS, "sb": SB, "me": "n2"}, "adopt", "labelled S.V"),
        # another filesystem, another label, a partition table: refused, naming force
        ({"sig": {"type": "ext4", "uuid": "x"}}, "refuse", r"carries ext4 \(UUID x\).*set force: true"),
        ({"sig": {"type": "ocfs2", "label": "other"}}, "refuse", "carries ocfs2 labelled other.*force: true"),
        ({"sig": {"pttype": "gpt"}}, "refuse", "carries a gpt partition table"),
        ({"sig": {"ambivalent": True}}, "refuse", "several signatures"),
        ({"sig": {"type": "ext4"}, "me": "n2"}, "refuse", "force: true"),
        # ... formatted over with force, by the designated host only
        ({"sig": {"type": "ext4"}, "force": True}, "format", "force: true"),
        ({"sig": {"type": "ext4"}, "force": True, "me": "n2"}, "wait", "n1 formats it"),
        # ours, but not usable as it is
        ({"sig": OURS, "sb": dict(SB, local=True)}, "refuse", "mkfs.ocfs2 -M local.*2 hosts"),
        ({"sig": OURS, "sb": dict(SB, cluster="other")}, "refuse", "cluster other, not flexvdi: set cluster_name"),
        ({"sig": OURS, "sb": dict(SB, stack="pcmk")}, "refuse", "pcmk cluster stack"),
        ({"sig": OURS, "sb": None}, "refuse", "superblock cannot be read"),
        # a format that never finished: the designated host refuses (never formats ours), others wait for it
        ({"sig": OURS, "sb": SB, "complete": False}, "refuse", "never finished.*wipefs -a"),
        ({"sig": OURS, "sb": SB, "complete": False, "me": "n2"}, "wait", "being formatted by n1"),
        ({"sig": OURS, "sb": SB, "complete": False, "mounted": True}, "adopt", "labelled S.V"),
    ],
)
def test_decide(kwargs, action, words):
    decision = _decide(**kwargs)
    assert decision.action == action, decision
    assert re.search(words, decision.reason), decision.reason


def test_a_local_volume_is_adopted_on_a_single_host_storage():
    decision = _decide(OURS, dict(SB, local=True, stack="", cluster=""), hosts=["n1"])
    assert (decision.action, decision.local) == ("adopt", True)


def test_classic_o2cb_disks_name_no_cluster_and_are_adopted():
    assert _decide(OURS, dict(SB, stack="", cluster="")).action == "adopt"


@pytest.mark.parametrize(
    ("kwargs", "action", "words"),
    [
        ({}, "refuse", r"has 2 slots and image storage has 3 hosts.*run `tunefs.ocfs2 -y -N 3 /dev/disk.*` on n1"),
        ({"me": "n3"}, "refuse", "grow_slots: true to have n1 run it"),
        ({"grow": True}, "adopt", "adding up to 3"),
        ({"grow": True, "me": "n2"}, "wait", "n1 adds them"),
        ({"grow": True, "mounted": True}, "refuse", "mounted on no host"),
        ({"grow": True, "mounted": True, "me": "n2"}, "refuse", "unmount it everywhere"),
    ],
)
def test_fewer_slots_than_hosts(kwargs, action, words):
    decision = _decide(OURS, dict(SB, slots=2), hosts=["n1", "n2", "n3"], **kwargs)
    assert decision.action == action, decision
    assert re.search(words, decision.reason), decision.reason
    assert decision.grow is (action == "adopt")


# --- the plan and the registry record, in check mode on a fake module ---------------------------


def _params(tmp_path, **extra):
    params = {
        "image_storage": "S",
        "name": "V",
        "device": DEV,
        "label": None,
        "slots": None,
        "cluster_name": "flexvdi",
        "mount_point": None,
        "mount_opts": "_netdev,noatime",
        "grow_slots": False,
        "format_timeout": 300,
        "identify": False,
        "identified_by": "seen",
        "state": "present",
        "force": False,
        "registry": str(tmp_path / "storage.json"),
        "fstab": str(tmp_path / "fstab"),
        "qemu_user": None,
        "inventory_hostname": "n1",
    }
    params.update(extra)
    return params


@pytest.fixture
def planned(tmp_path, monkeypatch):
    """planned(sig, sb=None, hosts=("n1", "n2"), online=True, **params) -> (result, module): converge in
    check mode; ``online``: whether the o2cb cluster flexvdi is online on this host."""
    monkeypatch.setattr(_ocfs2, "resolve_device", lambda spec: "/dev/sdz" if spec in (DEV, "/dev/sdz") else None)
    monkeypatch.setattr(_ocfs2, "is_block_device", lambda path: path == "/dev/sdz")
    monkeypatch.setattr(_ocfs2, "flush_buffers", lambda device: None)
    (tmp_path / "fstab").write_text("")

    def _planned(sig, sb=None, hosts=("n1", "n2"), debugfs=DEBUGFS, online=True, **extra):
        monkeypatch.setattr(_ocfs2, "cluster_online", lambda name: online and name == "flexvdi")
        registry = _registry.Registry(str(tmp_path / "storage.json"))
        data = _registry.empty()
        data["image_storages"]["S"] = {"hosts": list(hosts), "root": str(tmp_path / "S"), "volumes": {}}
        registry.save(data)
        monkeypatch.setattr(_ocfs2, "superblock", lambda host, device, what: sb)
        export = "".join(f"{k.upper()}={v}\n" for k, v in sig.items())
        module = FakeModule(
            _params(tmp_path, **extra),
            {"blkid": (0, export, "") if sig else (2, "", ""), "debugfs.ocfs2": (0, debugfs, "")},
        )
        host = Host(module)
        host._mounts = []
        host._qemu = QemuUser("libvirt-qemu", 64055, 994, (994,), "kvm")
        return _ocfs2.converge(host), module

    return _planned


def _record(result):
    after = json.loads([d for d in result["diff"] if d["after_header"].endswith("storage.json")][0]["after"])
    return after["image_storages"]["S"]["volumes"]["V"]


def test_designated_host_plans_the_format_then_the_mount(planned, tmp_path):
    result, module = planned({})
    mount_point = str(tmp_path / "S" / "V")
    assert result["actions"] == [
        f"save the first and last 16 MiB of blank {DEV} (/dev/sdz) and its OCFS2 backup superblock places, "
        "to put them back should the format fail",
        "format %s (/dev/sdz) with OCFS2: label S.V, 3 slots, o2cb cluster flexvdi (%s)"
        % (DEV, " ".join(mkfs_argv(DEV, "S.V", 3, "flexvdi"))),
        f"create directory {mount_point}",
        f"update {tmp_path / 'fstab'}",
        f"mount {DEV} on {mount_point} (ocfs2, _netdev,noatime,x-systemd.after=o2cb.service,x-systemd.after=ocfs2.service)",
        f"set owner of {mount_point} to libvirt-qemu:kvm once mounted",
        f"update {tmp_path / 'storage.json'}",
    ]
    # mkfs ran only as a dry run, on the kernel name, with the very arguments of the format
    assert ["mkfs.ocfs2", *mkfs_argv("/dev/sdz", "S.V", 3, "flexvdi", dry_run=True)[1:]] in module.commands
    assert not [c for c in module.commands if c[0] == "mkfs.ocfs2" and "--dry-run" not in c]
    assert _record(result) == {
        "type": "ocfs2",
        "mount_point": mount_point,
        "src": DEV,
        "kind": "block",
        "fstype": "ocfs2",
        "opts": f"_netdev,noatime,{AFTER}",
        "owner_qemu": True,
        "label": "S.V",
        "cluster_name": "flexvdi",
        "slots": 3,
    }
    fstab = [d for d in result["diff"] if d["after_header"].endswith("fstab")][0]["after"]
    assert fstab == f"{DEV}\t{mount_point}\tocfs2\t_netdev,noatime,{AFTER}\t0\t0\n"


def test_other_hosts_plan_to_wait_in_check_mode_without_waiting(planned):
    result, module = planned({}, inventory_hostname="n2", format_timeout=120)
    assert result["actions"][0] == f"wait up to 120 s for n1 to format {DEV} (OCFS2 labelled S.V)"
    assert not [c for c in module.commands if c[0] == "mkfs.ocfs2"]


def test_adoption_plans_no_format(planned):
    result, module = planned(OURS, SB, slots=4, label="S.V", mount_opts="noatime,nofail", cluster_name="flexvdi")
    assert not any(a.startswith(("format", "wait")) for a in result["actions"])
    assert not [c for c in module.commands if c[0] == "mkfs.ocfs2"]
    record = _record(result)
    assert (record["slots"], record["opts"]) == (4, f"_netdev,noatime,nofail,{AFTER}")


def test_format_without_identity_comparison_is_refused_on_a_shared_storage(planned):
    with pytest.raises(StorageError, match="refusing to format.*identify: true on every host.*identified_by"):
        planned({}, identified_by=None)


def test_a_single_host_storage_formats_without_comparison(planned):
    result, _module = planned({}, hosts=("n1",), identified_by=None)
    assert result["actions"][0].startswith("save the first and last 16 MiB of blank ")
    assert result["actions"][1].startswith("format ")
    assert _record(result)["slots"] == 2


def test_mkfs_dry_run_refusal_fails_the_plan(planned, monkeypatch):
    original = FakeModule.run_command

    def run_command(self, argv, **kwargs):
        if "--dry-run" in argv:
            self.commands.append(argv)
            return 1, "Dry run\n", "mkfs.ocfs2: Selected file system type requires a device of at least 2 gigabytes\n"
        return original(self, argv, **kwargs)

    monkeypatch.setattr(FakeModule, "run_command", run_command)
    with pytest.raises(StorageError, match="mkfs.ocfs2 refuses to format .*at least 2 gigabytes"):
        planned({})


def test_missing_device_is_refused_naming_the_host(planned):
    with pytest.raises(StorageError, match="is not present on host n1"):
        planned({}, device="/dev/disk/by-id/not-here")


def test_slots_below_hosts_are_refused_before_anything(planned):
    with pytest.raises(StorageError, match="slots 1 is fewer than the 2 hosts"):
        planned({}, slots=1)


@pytest.mark.parametrize(
    ("sig", "sb", "message"),
    [
        ({"type": "ext4"}, None, "carries ext4"),
        ({"type": "ocfs2", "label": "other"}, SB, "labelled other"),
        (OURS, dict(SB, slots=1), "has 1 slots and image storage has 2 hosts"),
    ],
)
def test_refusals_plan_nothing(planned, sig, sb, message):
    with pytest.raises(StorageError, match=message):
        planned(sig, sb)


def test_decision_is_a_plain_value():
    assert Decision("adopt") == Decision("adopt", "", False, False)


# --- waiting for the designated host (the real run of the wait step) ----------------------------


@pytest.fixture
def waiting(tmp_path, monkeypatch):
    """waiting(blkid_answers, timeout) -> the wait step of n2, its blkid answered in turn from the list."""
    monkeypatch.setattr(_ocfs2, "flush_buffers", lambda device: None)
    monkeypatch.setattr(_host, "POLL_INTERVAL", 0.01)
    monkeypatch.setattr(_ocfs2, "superblock", lambda host, device, what: SB)

    def _waiting(answers, timeout=5, debugfs=DEBUGFS):
        module = FakeModule(_params(tmp_path, inventory_hostname="n2", format_timeout=timeout), {})
        replies = list(answers)

        def run_command(argv, **kwargs):
            name = argv[3].rsplit("/", 1)[-1] if argv[0].endswith("timeout") else argv[0].rsplit("/", 1)[-1]
            module.commands.append(name)
            if name == "blkid":
                sig = replies.pop(0) if len(replies) > 1 else replies[0]
                return (0, "".join(f"{k.upper()}={v}\n" for k, v in sig.items()), "") if sig else (2, "", "")
            return 0, debugfs, ""

        module.run_command = run_command
        plan = Plan()
        _ocfs2._plan_wait(Host(module), plan, DEV, "/dev/sdz", WANT, TWO, WHAT)
        return plan, module

    return _waiting


def test_the_wait_ends_when_the_label_and_a_finished_format_appear(waiting):
    plan, module = waiting([{}, {}, OURS])
    plan.actions[0].do()
    assert module.commands.count("blkid") == 3
    assert module.commands[-1] == "debugfs.ocfs2", "the finished format is checked once the label is seen"


def test_a_label_without_a_finished_format_is_waited_for(waiting):
    """mkfs.ocfs2 writes the label before the journals and lost+found: seeing it is not enough."""
    plan, module = waiting([OURS], timeout=0.2, debugfs="debugfs: ls -l /\n")
    with pytest.raises(StorageError, match="waited 0.2 s for n1.*being formatted by n1"):
        plan.actions[0].do()


def test_the_wait_times_out_naming_the_designated_host(waiting):
    plan, _module = waiting([{}], timeout=0)
    with pytest.raises(StorageError) as failure:
        plan.actions[0].do()
    assert "waited 0 s for n1, the first host of the image storage" in failure.value.msg
    assert "is blank; n1 formats it" in failure.value.msg
    assert "--limit" in failure.value.msg


def test_something_else_appearing_while_waiting_is_refused(waiting):
    plan, _module = waiting([{}, {"type": "ext4"}])
    with pytest.raises(StorageError, match="carries ext4"):
        plan.actions[0].do()


def test_a_failed_wait_undoes_nothing_and_says_no_undo_is_missing():
    plan = Plan()

    def fail():
        raise StorageError("gone")

    plan.wait("wait for n1", fail)
    with pytest.raises(StorageError) as failure:
        plan.apply(check_mode=False)
    assert failure.value.msg == "wait for n1 failed: gone"
    assert failure.value.left == []


@pytest.fixture
def mounted_here(monkeypatch, tmp_path):
    mount_point = str(tmp_path / "S" / "V")
    (tmp_path / "S" / "V").mkdir(parents=True)
    mounted = MountInfo(1, 0, "0:1", "/", mount_point, "rw", "ocfs2", "/dev/sdz", "rw")
    monkeypatch.setattr(Host, "mounts", property(lambda self: [mounted]))
    monkeypatch.setattr(_ocfs2, "check_responsive", lambda host, path, what: None)
    monkeypatch.setattr(_ocfs2, "plan_owner", lambda host, plan, path, settled: None)
    # Ownership is not what these tests are about (pytest's 0700 tmp would block the qemu user).
    monkeypatch.setattr(_volumes, "qemu_access", lambda host, path, owner_qemu=False: (True, ""))
    return mount_point


def test_the_mounted_no_op_path_starts_no_command(planned, mounted_here, tmp_path):
    """Mounted here already: the superblock (in-process) tells label and slots; no blkid. Only the
    details view asks the tools what no file tells (slots in use, the nodes that have it mounted)."""
    (tmp_path / "fstab").write_text(f"{DEV}\t{mounted_here}\tocfs2\t_netdev,noatime,{AFTER}\t0\t0\n")
    result, module = planned(OURS, SB, inventory_hostname="n2")
    assert [c[0] for c in module.commands] == ["debugfs.ocfs2", "mounted.ocfs2"]
    assert result["actions"] == [f"update {tmp_path / 'storage.json'}"], "only the record is new"


def test_an_fstab_line_without_the_order_after_o2cb_is_rewritten_not_remounted(planned, mounted_here, tmp_path):
    """A volume mounted by an earlier version: its fstab line gains x-systemd.after=o2cb.service,
    which only fstab reads, so the live mount is left alone (no remount, no unmount)."""
    (tmp_path / "fstab").write_text(f"{DEV}\t{mounted_here}\tocfs2\t_netdev,noatime\t0\t0\n")
    result, module = planned(OURS, SB, inventory_hostname="n2")
    assert result["actions"] == [f"update {tmp_path / 'fstab'}", f"update {tmp_path / 'storage.json'}"]
    assert not [c for c in module.commands if c[0] in ("mount", "umount")]


# --- the o2cb cluster before a format, and the undo of a failed format ---------------------------

MiB, GiB = 2**20, 2**30


def test_check_mode_warns_that_the_cluster_is_not_online_yet(planned):
    """An earlier task of the play (the ocfs2_cluster role) starts o2cb, which check mode cannot see;
    the real run refuses (tests/integration/test_ocfs2_volume.py)."""
    result, module = planned({}, online=False)
    assert any(a.startswith(f"format {DEV} (/dev/sdz) with OCFS2") for a in result["actions"]), result["actions"]
    assert any("the o2cb cluster flexvdi is not online on host n1 yet" in w for w in module.warnings), module.warnings


def test_only_the_format_asks_for_the_cluster(planned):
    """Adopting and waiting do not format: the cluster is the mount's business (it names it when it fails)."""
    assert planned(OURS, SB, online=False)[0]["changed"]
    assert planned({}, inventory_hostname="n2", online=False)[0]["actions"][0].startswith("wait up to")


@pytest.mark.parametrize(
    ("kwargs", "blank"),
    [({"sig": {}}, True), ({"sig": {"type": "ext4"}, "force": True}, False), ({"sig": {}, "me": "n2"}, False)],
)
def test_only_a_blank_device_is_formatted_undoably(kwargs, blank):
    assert _decide(**kwargs).blank is blank


def test_a_forced_format_over_a_signature_has_no_save_step(planned):
    result, _module = planned({"type": "ext4"}, force=True)
    assert result["actions"][0].startswith("format "), "what was there is not put back: it was not blank"


@pytest.mark.parametrize(
    ("size", "regions"),
    [
        (20 * MiB, [(0, 20 * MiB)]),  # the two ends overlap: the whole device
        (32 * MiB, [(0, 32 * MiB)]),  # they touch
        (2200 * MiB, [(0, 16 * MiB), (GiB, MiB), (2184 * MiB, 16 * MiB)]),
        (GiB + MiB // 2, [(0, 16 * MiB), (GiB + MiB // 2 - 16 * MiB, 16 * MiB)]),  # 1 GiB's place within the end
        (4 * GiB, [(0, 16 * MiB), (GiB, MiB), (4 * GiB - 16 * MiB, 16 * MiB)]),  # 4 GiB's place is past the end
        (
            5 * 2**40,
            [(0, 16 * MiB)]
            + [((2**30) << (2 * i), MiB) for i in range(6)]  # 1G, 4G, 16G, 64G, 256G, 1T
            + [(5 * 2**40 - 16 * MiB, 16 * MiB)],
        ),
    ],
)
def test_undo_regions(size, regions):
    assert _ocfs2.undo_regions(size) == regions


@pytest.mark.parametrize("size", [20 * MiB, 2200 * MiB, 5 * GiB + 512, 3 * 2**40])
def test_undo_regions_cover_every_place_a_signature_is_read(size):
    """Where blkid -p and this module look, from the start (OCFS2 superblock at 1 to 8 KiB, btrfs at
    64 KiB, VMFS at 2 MiB, UDF's anchor at sector 512 of 4 KiB blocks) and from the end (GPT's
    backup, md 0.90 and 1.0, ZFS's last labels)."""
    regions = _ocfs2.undo_regions(size)
    from_start = [1024, 2048, 4096, 8192 + 511, 64 * 1024, 2 * MiB + 4095, 512 * 4096 + 4095]
    from_end = [size - 512, size - 64 * 1024, size - 8192, size - 512 * 1024]
    for offset in from_start + from_end:
        assert any(start <= offset < start + length for start, length in regions), offset


def _scribble(path, offset, data):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def _fake_ocfs2(path, label=b"S.V", size=2200 * MiB):
    """What mkfs.ocfs2 leaves on its way: the first MiB zeroed, a superblock at block 2 (4 KiB
    blocks), a journal in the middle, a backup superblock at 1 GiB, the last MiB zeroed."""
    _scribble(path, 0, bytes(MiB))
    _scribble(path, 8192, superblock_bytes(label=label.decode()))
    _scribble(path, 130 * MiB, b"\xc0\x3b\x39\x98" + bytes(4092))
    _scribble(path, GiB, superblock_bytes(label=label.decode()))
    _scribble(path, size - MiB, bytes(MiB))


@pytest.fixture
def disk(tmp_path):
    """A 2200 MiB sparse file with something in every area the undo saves and one it does not."""
    path = tmp_path / "disk"
    with open(path, "wb") as handle:
        handle.truncate(2200 * MiB)
    rng = random.Random(2200)
    for offset in (0, 5 * MiB, GiB - 4096, GiB + 4096, 130 * MiB, 2200 * MiB - 70000):
        _scribble(path, offset, rng.randbytes(65536))
    return path


def _areas(path):
    """What ``path`` (2200 MiB) holds where the undo saves."""
    found = []
    with open(path, "rb") as handle:
        for offset, length in _ocfs2.undo_regions(2200 * MiB):
            handle.seek(offset)
            found.append((offset, handle.read(length)))
    return found


def test_save_and_restore_put_back_every_saved_byte(disk):
    before = _areas(disk)
    saved = _ocfs2.save_regions(str(disk))
    assert saved["size"] == 2200 * MiB
    assert [(o, len(d)) for o, d in saved["regions"]] == _ocfs2.undo_regions(2200 * MiB)
    _fake_ocfs2(disk)
    assert _ocfs2.read_superblock(str(disk))["label"] == "S.V"
    _ocfs2.restore_regions(str(disk), saved)
    assert _areas(disk) == before
    assert _ocfs2.read_superblock(str(disk)) is None
    with open(disk, "rb") as handle:
        handle.seek(130 * MiB)
        assert handle.read(4) == b"\xc0\x3b\x39\x98", "between the saved areas mkfs.ocfs2's writes stay"


def test_restore_writes_nothing_when_the_size_changed(disk):
    saved = _ocfs2.save_regions(str(disk))
    _fake_ocfs2(disk)
    with open(disk, "r+b") as handle:
        handle.truncate(2300 * MiB)
    with pytest.raises(OSError, match="size changed from 2306867200 to 2411724800 bytes; nothing was written"):
        _ocfs2.restore_regions(str(disk), saved)
    assert _ocfs2.read_superblock(str(disk))["label"] == "S.V"


class DiskModule(FakeModule):
    """blkid -p reads the file: OCFS2 when a superblock is at 1, 2, 4 or 8 KiB (or ``seen`` says
    it always is); mkfs.ocfs2 (not its dry run) is ``mkfs(path)``, which returns its rc."""

    def __init__(self, params, path, mkfs):
        super().__init__(params, {})
        self.check_mode = False
        self.path, self.mkfs, self.seen = path, mkfs, None

    def answer(self, argv):
        if argv[0] == "blkid":
            sig = self.seen or ({"type": "ocfs2", "label": "S.V"} if _ocfs2.read_superblock(self.path) else {})
            return (0, "".join(f"{k.upper()}={v}\n" for k, v in sig.items()), "") if sig else (2, "", "")
        if argv[0] == "mkfs.ocfs2":
            if "--dry-run" in argv:
                return 0, "Dry run\n", ""
            return self.mkfs(self), "", "mkfs.ocfs2: Unable to access cluster service while initializing the cluster\n"
        return 0, "", ""


@pytest.fixture
def formatting(tmp_path, disk, monkeypatch):
    """formatting(mkfs, blank=True) -> (plan, module): n1's save and format steps for ``disk``, plus a
    last step that fails when ``module.later_fails``."""
    monkeypatch.setattr(_ocfs2, "flush_buffers", lambda device: None)
    monkeypatch.setattr(_ocfs2, "cluster_online", lambda name: True)

    def _formatting(mkfs, blank=True):
        module = DiskModule(_params(tmp_path), str(disk), mkfs)
        module.later_fails = False
        plan = Plan()
        _ocfs2._plan_format(Host(module), plan, DEV, str(disk), WANT, ["n1"], WHAT, blank)

        def later():
            if module.later_fails:
                raise StorageError("mount failed")

        plan.add("mount it", later, lambda: None)
        return plan, module

    return _formatting


def _writes_then_fails(module):
    _fake_ocfs2(module.path)
    return 1


def test_a_failed_format_is_undone_and_the_device_proved_blank(formatting, disk):
    before = _areas(disk)
    plan, module = formatting(_writes_then_fails)
    with pytest.raises(StorageError) as failure:
        plan.apply(check_mode=False)
    msg = failure.value.msg
    assert msg.startswith(f"format {DEV} ({disk}) with OCFS2: label S.V") and "failed: " in msg
    assert "mkfs.ocfs2 failed (rc=1): mkfs.ocfs2: Unable to access cluster service" in msg
    assert msg.endswith(
        f"; undone: save the first and last 16 MiB of blank {DEV} ({disk}) and its OCFS2 backup superblock "
        "places, to put them back should the format fail"
    )
    assert failure.value.left == []
    assert _areas(disk) == before
    assert [c[0] for c in module.commands].count("blkid") == 2, "blank before the save, blank after the undo"


def test_an_undo_that_cannot_prove_the_device_blank_says_so(formatting, disk):
    def writes_what_blkid_keeps_seeing(module):
        _writes_then_fails(module)
        module.seen = {"type": "ocfs2", "label": "S.V"}
        return 1

    plan, _module = formatting(writes_what_blkid_keeps_seeing)
    with pytest.raises(StorageError) as failure:
        plan.apply(check_mode=False)
    [left] = failure.value.left
    assert f"{DEV} ({disk}) is NOT blank again" in left and "blkid -p still reads ocfs2 labelled S.V" in left
    assert f"wipefs -a {DEV}" in left
    assert "; could NOT undo: save the first and last 16 MiB" in failure.value.msg


def test_a_device_written_since_it_was_probed_is_neither_saved_nor_formatted(formatting, disk):
    ran = []
    plan, module = formatting(lambda module: ran.append(module) or 0)
    module.seen = {"type": "xfs"}
    with pytest.raises(StorageError, match=r"is no longer blank: blkid -p now reads xfs on it; nothing was written"):
        plan.apply(check_mode=False)
    assert ran == []


def test_a_finished_format_is_kept_when_a_later_step_fails(formatting, disk):
    def formats(module):
        _fake_ocfs2(module.path)
        return 0

    plan, module = formatting(formats)
    module.later_fails = True
    with pytest.raises(StorageError) as failure:
        plan.apply(check_mode=False)
    assert failure.value.msg.startswith("mount it failed: mount failed; could NOT undo: format ")
    assert "save the first" not in failure.value.msg, "nothing of the save is left to undo"
    [left] = failure.value.left
    assert left.startswith(f"format {DEV}") and left.endswith("(no undo)")
    assert _ocfs2.read_superblock(str(disk))["label"] == "S.V"
