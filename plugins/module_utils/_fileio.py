# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic file writes and locking. Private to the collection."""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from contextlib import contextmanager, suppress

from ._errors import StorageError


def read_text(path, default=None):
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except FileNotFoundError:
        if default is None:
            raise
        return default


def read_value(path):
    """A one-line value of sysfs or a small file, stripped (of NULs too); None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip().strip("\0").strip()
    except OSError:
        return None


def atomic_write(path, text, mode=0o644, owner=None):
    """Write ``text`` to ``path``: temp file in the same directory, fsync, rename, fsync dir.

    The file never exists half-written; ``mode`` is applied before the rename so a
    secret is never world-readable, not even for an instant.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, owner[0], owner[1])
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except OSError as exc:
        with suppress(OSError):
            os.unlink(tmp)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextmanager
def locked(path):
    """Hold an exclusive fcntl lock on ``path`` (created 0600) for the block."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot open lock file {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            # Someone else holds it: wait (a converge on the same host, e.g. async tasks).
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
