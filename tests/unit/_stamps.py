"""What unit tests compare to prove that a probe wrote nothing: every entry's mtime and ctime."""

from __future__ import annotations

import os


def tree_stamps(root):
    """Every entry below ``root`` with its mtime and ctime: creating and removing a file shows."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            st = os.lstat(os.path.join(directory, name))
            found[os.path.relpath(os.path.join(directory, name), root)] = (st.st_mtime_ns, st.st_ctime_ns)
    return found
