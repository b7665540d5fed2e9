#!/usr/bin/python
# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gluster_volume
short_description: A Gluster volume of a flexVDI image storage, replicated over the bricks of its hosts
version_added: 0.3.0
description:
  - "Experimental in flexVDI, and every run says so in a warning: joins a directory of each host's own disk
    (O(brick)) into one replicated Gluster volume, and FUSE-mounts it on every host of the image storage, with
    C(backup-volfile-servers) naming the other hosts and an fstab entry, owned by and verified writable for
    the qemu user."
  - Reads the cluster's state with C(gluster --xml) only (volume info, volume status detail, heal info
    summary, pool list), never its human output.
  - "One host creates the volume: the designated one, the first host listed in the image storage's
    O(flexvdi.storage.image_storage#module:hosts) (a property of the declaration, so every run, fork, strategy,
    C(--limit) and job slice agrees). It creates it, sets the options that differ, starts it, adds the bricks
    of hosts added to the storage (C(add-brick) with the new replica count) and, only with O(force=true) and
    never while heal is pending, removes the bricks of hosts no longer listed. The other hosts wait, at most
    O(create_timeout) seconds, until the volume exists and is started, then mount it."
  - "Every host checks the declaration first, so a bad one is refused everywhere before anything is created:
    fewer than two data hosts, O(replica) not the number of data hosts, replica 2 without an O(arbiter)
    (split-brain) unless O(force=true), a brick's host that is not a connected peer (named in the error), a
    brick inside another volume or overlapping another Gluster volume's brick."
  - A mount whose client died (C(Transport endpoint is not connected)) is reported with status V(stale), and
    mounted again by the next converge. Every look inside the mount is bounded in time.
  - V(absent) unmounts it on this host and drops its fstab entry and registry record. The Gluster volume is
    stopped and deleted (by the designated host) only with O(delete_volume=true); brick data is never removed.
  - Needs glusterd running and every brick's host probed into one trusted pool (role
    C(flexvdi.storage.gluster_cluster)).
  - "Only the storage's hosts and the arbiter may connect to the bricks: the volume's C(auth.allow) is set to
    their addresses in the trusted pool (as IP addresses: glusterd compares the client's address, never its
    name), on a volume it creates and on one it adopts, and follows the declaration when hosts are added or
    removed. Any other machine's mount is refused (C(Authentication failed)). A host's own mount fetches its
    volume file from its own glusterd, which gives the pool's members a trusted one, so it mounts whatever
    C(auth.allow) says; the list matters when a host mounts from another server (C(backup-volfile-servers),
    its own glusterd down) and for every machine outside the pool. C(auth.allow) in O(options) replaces the
    list: it is checked (addresses, networks such as V(10.0.0.0/24), wildcards such as V(10.0.0.*), or V(*)
    alone, which opens the volume to every address and is warned about)."
  - "Every host refuses a public address in the trusted pool (one outside RFC 1918, RFC 6598 and IPv6 ULA;
    loopback and link-local count as private) of the storage's hosts or the arbiter, before anything is
    done, unless that host's C(gluster_cluster_allow_public) is true: the bricks carry the guests' disks
    unencrypted."
author:
  - flexVDI storage team (@flexvdi)
extends_documentation_fragment:
  - flexvdi.storage.storage
  - flexvdi.storage.storage.state
  - flexvdi.storage.storage.mounts
  - flexvdi.storage.storage.qemu
  - flexvdi.storage.storage.attributes
options:
  image_storage:
    description: Name of the image storage the volume belongs to; it must be registered on this host.
    type: str
    required: true
  name:
    description:
      - Name of the volume, unique in its image storage, and the name of the Gluster volume in the trusted
        pool; letters, digits, C(-) and C(_).
    type: str
    required: true
  brick:
    description:
      - The brick directory, the same path on every host that holds a brick (the data hosts and the arbiter).
        glusterd creates it; its root is owned by the qemu user (C(storage.owner-uid)/C(owner-gid)).
      - It belongs on a filesystem of its own (XFS with 512-byte inodes; role C(flexvdi.storage.gluster_cluster)
        prepares one); a directory on the root filesystem is refused by glusterd unless O(force=true).
      - Required with O(state=present).
    type: path
  replica:
    description:
      - Copies of every file. Defaults to, and must be, the number of data hosts (the image storage's hosts
        but the arbiter); every data host holds a full copy.
    type: int
  arbiter:
    description:
      - Inventory name of a host that holds a metadata-only brick (C(replica 3 arbiter 1)), so two data hosts
        keep quorum when one of them is lost and never split-brain. Recommended, and needed, for two data
        hosts; a few MB of disk are enough (a NAS will do). It need not be a host of the image storage, but it
        must be a peer of the trusted pool.
    type: str
  addresses:
    description:
      - Address of each host in the trusted pool, by inventory name, used for bricks and mounts.
      - Set by the collection's action plugin from each host's C(gluster_cluster_address), else its
        C(ansible_host), else its inventory name.
    type: dict
  allow_public:
    description:
      - Inventory names of the hosts whose public address in the trusted pool is accepted.
      - Set by the collection's action plugin to the hosts whose C(gluster_cluster_allow_public) is true.
    type: list
    elements: str
    default: []
  transport:
    description: Transport of the volume, fixed when it is created.
    type: str
    choices: [tcp, rdma, "tcp,rdma"]
    default: tcp
  options:
    description:
      - Gluster options to set, by their full names (for example C(performance.read-ahead)); they win over
        the O(virt_profile) settings and the C(auth.allow) of the storage's hosts. Only options that differ from
        the volume's are set.
      - C(auth.allow) may be a list or comma-separated text of addresses, networks and wildcards, or V(*) alone;
        V(*) together with addresses, or a host name, is refused.
    type: dict
    default: {}
  virt_profile:
    description:
      - Set the settings of Gluster's C(virt) option group, those VM images need (sharding, eager locking,
        quorum, O_DIRECT...), and C(storage.owner-uid)/C(storage.owner-gid) of the qemu user.
    type: bool
    default: true
  mount_point:
    description:
      - Where the volume is mounted on every host. Defaults to C(<root>/<name>), below the image
        storage's registered root (V(/var/lib/flexvdi/volumes/<image_storage>/<name>) by default).
    type: path
  create_timeout:
    description:
      - Seconds a host that does not create the volume waits for the designated host to create and start
        it. V(0) does not wait.
    type: int
    default: 300
  delete_volume:
    description:
      - With O(state=absent), the designated host also stops and deletes the Gluster volume (every host's
        mount of it stops working). The data stays in the bricks.
      - It acts while the volume is registered on the designated host; once a run without it has unregistered
        the volume there, delete the Gluster volume by hand (C(gluster volume stop) and C(gluster volume delete)).
    type: bool
    default: false
  force:
    description:
      - Create a replica 2 volume without an arbiter, accepting split-brain; let glusterd use brick directories
        on the root filesystem; remove the bricks of hosts no longer listed (never while heal is pending).
      - With O(state=absent), unmount even when guest images or open files are on the volume.
notes:
  - Creation runs C(gluster volume create <name> replica <n> [arbiter 1] transport <t> <bricks>), then one
    C(gluster volume set) per option that differs, then C(gluster volume start).
  - The mount is C(<own address>:/<name>) with C(_netdev,backup-volfile-servers=<the other hosts>).
seealso:
  - module: flexvdi.storage.image_storage
  - module: flexvdi.storage.ocfs2_volume
  - module: flexvdi.storage.storage_info
"""

EXAMPLES = r"""
- name: Two data hosts and an arbiter on the NAS, mounted on both hosts
  flexvdi.storage.gluster_volume:
    image_storage: MyImageStorage
    name: SSD
    brick: /srv/gluster/ssd/brick
    arbiter: nas

- name: Unmount and unregister it, and delete the Gluster volume (the bricks keep the data)
  flexvdi.storage.gluster_volume:
    image_storage: MyImageStorage
    name: SSD
    state: absent
    delete_volume: true
"""

RETURN = r"""
actions:
  description: What was done, or in check mode would be done, in order.
  returned: always
  type: list
  elements: str
  sample:
    - create Gluster volume SSD, replica 3 arbiter 1 (nas holds metadata only), bricks 10.0.0.11:/srv/gluster/ssd/brick ...
    - "set 28 option(s) of Gluster volume SSD: performance.quick-read=off, ..., auth.allow=10.0.0.11,10.0.0.12,10.0.0.20"
    - start Gluster volume SSD
    - create directory /var/lib/flexvdi/volumes/MyImageStorage/SSD
    - update /etc/fstab
    - mount 10.0.0.11:/SSD on /var/lib/flexvdi/volumes/MyImageStorage/SSD (glusterfs, _netdev,backup-volfile-servers=10.0.0.12:10.0.0.20)
    - set owner of /var/lib/flexvdi/volumes/MyImageStorage/SSD to libvirt-qemu:kvm once mounted
    - update /etc/flexvdi/storage.json
volume:
  description:
    - The details view of the volume on this host, as M(flexvdi.storage.external_volume) returns it
      (mounted, in_fstab, size, free, fallocate, reflink, qemu_writable, images...), plus Gluster's.
  returned: always
  type: dict
  contains:
    name:
      description: Volume name.
      type: str
      returned: always
      sample: SSD
    status:
      description: V(online), V(offline), V(unresponsive), V(stale) (the mount's client died) or V(absent).
      type: str
      returned: always
      sample: online
    volume:
      description: The Gluster volume's name.
      type: str
      returned: when present
      sample: SSD
    volume_status:
      description: The Gluster volume's state (V(Started), V(Stopped), V(Created), V(missing)); null when not read.
      type: str
      returned: when present
      sample: Started
    bricks:
      description: Every brick of the volume, with the inventory host holding it and whether its process is online.
      type: list
      elements: dict
      returned: when present
      sample: [{"host": "node1", "brick": "10.0.0.11:/srv/gluster/ssd/brick", "arbiter": false, "online": true}]
    auth_allow:
      description:
        - The addresses that may mount the Gluster volume (its C(auth.allow)); V(["*"]) when every address may.
          Null when not read.
      type: list
      elements: str
      returned: when present
      sample: ["10.0.0.11", "10.0.0.12", "10.0.0.20"]
    heal_pending:
      description: Entries waiting for self-heal on the bricks that answered (null when unknown).
      type: int
      returned: when present
      sample: 0
    mount_point:
      description: Where the volume is mounted.
      type: str
      returned: when present
      sample: /var/lib/flexvdi/volumes/MyImageStorage/SSD
    mounted:
      description: Whether O(mount_point) is a mount point.
      type: bool
      returned: when present
      sample: true
    message:
      description: Why the volume is offline, stale or not usable by qemu, and which bricks are offline; empty when all is well.
      type: str
      returned: when present
      sample: ""
"""

from ansible_collections.flexvdi.storage.plugins.module_utils import _payload

_payload.compile_once()  # first: every file imported below is compiled once (see _payload)

from ansible_collections.flexvdi.storage.plugins.module_utils import _gluster, _module


def main():
    _module.run_object(_module.gluster_volume_spec, _gluster.converge)


if __name__ == "__main__":
    main()
