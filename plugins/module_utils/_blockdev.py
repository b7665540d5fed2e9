# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Block devices: where they come from, read from sysfs. Private to the collection."""

from __future__ import annotations

import os

# Transports whose disks appear only once the network is up: mounts from them need _netdev.
_NETWORK_NAME_PREFIXES = ("nbd", "rbd", "drbd")


def sysfs_path(device):
    """The /sys/devices path of a block device node (partition or disk), or None."""
    try:
        st = os.stat(device)
    except OSError:
        return None
    link = "/sys/dev/block/%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    return os.path.realpath(link) if os.path.exists(link) else None


def is_network_block(device):
    """Whether ``device`` reaches its data over the network (iSCSI, NBD, RBD, DRBD)."""
    path = sysfs_path(device)
    if path is None:
        return False
    name = os.path.basename(path)
    if name.startswith(_NETWORK_NAME_PREFIXES):
        return True
    # An iSCSI disk sits below its session in sysfs: .../hostN/sessionM/targetN:0:0/...
    return any(part.startswith("session") for part in path.split("/"))
