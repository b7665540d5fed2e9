"""The one-pass declaration: objects in dependency order, each checked by its own module's spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ansible_collections.flexvdi.storage.plugins.module_utils import _onepass

MODULES = Path(__file__).resolve().parents[2] / "plugins" / "modules"
COMMON = {"registry": "/r.json", "fstab": "/f", "inventory_hostname": "n1", "inventory_hosts": ["n1", "n2"]}


def _objects(**declaration):
    return _onepass.objects(dict(COMMON, **declaration), "n1")


def test_objects_come_in_dependency_order_with_their_module_arguments():
    items, errors = _objects(
        image_storages=[
            {
                "name": "S",
                "hosts": ["n1", "n2"],
                "volumes": [
                    {"name": "G", "type": "gluster", "brick": "/srv/b"},
                    {"name": "O", "type": "ocfs2", "device": "/dev/disk/by-id/wwn-1"},
                    {"name": "E", "mount_point": "/srv/e", "label": "ignored: an OCFS2 option"},
                    {"name": "Old", "mount_point": "/srv/old", "state": "absent"},
                ],
            },
            {"name": "Gone", "state": "absent", "volumes": [{"name": "V", "mount_point": "/srv/v"}]},
        ],
        media_storages=[{"name": "cifs", "server": "nas", "share": "m", "username": "u", "hosts": ["n1"]}],
        direct_storages=[{"name": "D", "host": "n2", "device": "/dev/disk/by-id/x"}],
    )
    assert errors == []
    assert [i.label for i in items] == [
        "image storage S",
        "external volume Old of image storage S",
        "external volume V of image storage Gone",
        "external volume E of image storage S",
        "OCFS2 volume O of image storage S",
        "Gluster volume G of image storage S",
        "media storage cifs",
        "direct storage D",
        "image storage Gone",
    ]
    by_label = {i.label: i for i in items}
    external = by_label["external volume E of image storage S"]
    assert external.params["image_storage"] == "S" and external.params["registry"] == "/r.json"
    assert external.params["owner_qemu"] is False and "label" not in external.params
    assert external.needs == ["image storage S"]
    assert by_label["image storage Gone"].needs == ["external volume V of image storage Gone"]
    assert by_label["external volume V of image storage Gone"].params["state"] == "absent"


def test_a_host_not_listed_converges_no_volume_of_the_storage():
    items, errors = _onepass.objects(
        dict(COMMON, image_storages=[{"name": "S", "hosts": ["n2"], "volumes": [{"name": "E", "mount_point": "/x"}]}]),
        "n1",
    )
    assert errors == [] and [i.label for i in items] == ["image storage S"]


def test_every_error_is_named_at_once():
    _items, errors = _objects(
        image_storages=[
            {
                "name": "S",
                "hosts": ["n1"],
                "volumes": [
                    {"name": "bad name", "mount_point": "/srv/x"},
                    {"name": "NoPoint"},
                    {"name": "O", "type": "ocfs2", "device": "/dev/disk/by-id/x", "slots": "many"},
                    {"name": "T", "type": "zfs"},
                    {"name": "E2", "mount_point": "/etc"},
                ],
            }
        ],
        direct_storages=[{"name": "D", "device": "/dev/disk/by-id/y", "colour": "red"}],
    )
    text = "\n".join(errors)
    for words in ("'bad name'", "NoPoint", "slots", "'zfs'", "/etc", "direct storage D", "colour"):
        assert words in text, (words, text)
    assert len(errors) >= 6


def test_an_object_declared_twice_is_an_error():
    _items, errors = _objects(image_storages=[{"name": "S", "hosts": ["n1"]}, {"name": "S", "hosts": ["n1"]}])
    assert errors == ["image storage S is declared more than once: keep one"]


def test_the_create_phase_is_the_first_hosts_only():
    items, _errors = _objects(
        image_storages=[
            {
                "name": "S",
                "hosts": ["n2", "n1"],
                "volumes": [{"name": "O", "type": "ocfs2", "device": "/dev/disk/by-id/w"}],
            },
            {"name": "T", "hosts": ["n1"], "volumes": [{"name": "G", "type": "gluster", "brick": "/srv/b"}]},
        ]
    )
    declared = {"S": {"hosts": ["n2", "n1"]}, "T": {"hosts": ["n1"]}}
    assert [i.label for i in items if _onepass.creates(i, declared, "n1")] == ["Gluster volume G of image storage T"]
    assert [i.label for i in items if _onepass.creates(i, declared, "n2")] == ["OCFS2 volume O of image storage S"]


def test_a_declaration_of_external_volumes_alone_imports_no_other_types_code(tmp_path):
    """The module process compiles every module_utils it imports: a host of external volumes alone
    (most hosts) must not pay for the OCFS2, Gluster, media and direct storage code."""
    (tmp_path / "vol").mkdir()
    (tmp_path / "fstab").write_text("")
    storage = {"name": "S", "hosts": ["n1"], "root": str(tmp_path / "root")}
    volume = {"name": "V", "type": "external", "mount_point": str(tmp_path / "vol")}
    args = {"registry": str(tmp_path / "r.json"), "fstab": str(tmp_path / "fstab"), "inventory_hostname": "n1"}
    args["image_storages"] = [dict(storage, volumes=[volume])]
    (tmp_path / "args.json").write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    script = (
        "import atexit, json, runpy, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
        "sys.argv = ['storage', sys.argv[1]]\n"
        "runpy.run_path(%r, run_name='__main__')\n" % str(MODULES / "storage.py")
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for run in ("converges", "no-op"):
        proc = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / "args.json")], capture_output=True, text=True, env=env
        )
        result = json.loads(proc.stdout)
        assert not result.get("failed") and result["changed"] == (run == "converges"), (run, proc.stdout)
        loaded = {m.rsplit(".", 1)[1] for m in json.loads(proc.stderr.splitlines()[-1]) if ".module_utils._" in m}
        assert "_external" in loaded and "_onepass" in loaded, loaded
        assert not loaded & {"_ocfs2", "_gluster", "_gluster_cli", "_media", "_direct", "_voltypes", "_info"}, loaded
