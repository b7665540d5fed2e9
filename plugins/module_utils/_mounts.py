# Copyright: flexVDI storage team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one parser of /proc/self/mountinfo and fstab. Private to the collection.

fstab is edited line by line: comments, blank lines, lines this parser does not
understand and the order of everything are kept exactly; only the entry being set or
removed is rendered anew. Octal escapes (``\\040`` for a space...) are decoded when
read and encoded when written, as getmntent(3) does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ._fileio import atomic_write, read_text

_ESCAPES = {" ": "\\040", "\t": "\\011", "\n": "\\012", "\\": "\\134"}
_OCTAL = re.compile(r"\\([0-7]{3})")


def unescape(text):
    """Decode getmntent-style octal escapes (``\\040`` -> space)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


def escape(text):
    """Encode the characters fstab cannot hold verbatim."""
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


@dataclass
class MountInfo:
    """One line of /proc/self/mountinfo."""

    mount_id: int
    parent_id: int
    dev: str
    root: str
    mount_point: str
    options: str
    fstype: str
    source: str
    super_options: str

    @property
    def opts(self):
        return set((self.options + "," + self.super_options).split(","))


def parse_mountinfo(text):
    """Parse mountinfo text into MountInfo records, in kernel order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
            mounts.append(
                MountInfo(
                    mount_id=int(fields[0]),
                    parent_id=int(fields[1]),
                    dev=fields[2],
                    root=unescape(fields[3]),
                    mount_point=unescape(fields[4]),
                    options=fields[5],
                    fstype=fields[sep + 1],
                    source=unescape(fields[sep + 2]),
                    super_options=fields[sep + 3] if len(fields) > sep + 3 else "",
                )
            )
        except (ValueError, IndexError):
            continue
    return mounts


def read_mountinfo(path="/proc/self/mountinfo"):
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return parse_mountinfo(handle.read())


def mounted_at(mounts, mount_point):
    """The mount visible at ``mount_point`` (the last one stacked there), or None."""
    mount_point = normpath(mount_point)
    found = None
    for entry in mounts:
        if entry.mount_point == mount_point:
            found = entry
    return found


def containing_mount(mounts, path):
    """The mount that holds ``path`` (longest mount point prefix), or None."""
    path = normpath(path)
    best = None
    for entry in mounts:
        mp = entry.mount_point
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and (best is None or len(mp) >= len(best.mount_point)):
            best = entry
    return best


def normpath(path):
    """Absolute, normalised path without trailing slash (symlinks are not resolved)."""
    if not path:
        return path
    path = os.path.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("//") else path


@dataclass
class FstabEntry:
    spec: str
    file: str
    vfstype: str = "auto"
    mntops: str = "defaults"
    freq: str = "0"
    passno: str = "0"

    def render(self):
        return "\t".join(
            [escape(self.spec), escape(self.file), self.vfstype, escape(self.mntops), self.freq, self.passno]
        )


@dataclass
class _Line:
    text: str
    entry: FstabEntry | None = None


@dataclass
class Fstab:
    """fstab as lines; entries are parsed, everything else is kept verbatim."""

    path: str = "/etc/fstab"
    lines: list = field(default_factory=list)
    original: str = ""

    @classmethod
    def parse(cls, text, path="/etc/fstab"):
        lines = []
        for raw in text.splitlines():
            lines.append(_Line(raw, _parse_entry(raw)))
        return cls(path=path, lines=lines, original=text)

    @classmethod
    def load(cls, path="/etc/fstab"):
        return cls.parse(read_text(path, default=""), path)

    def entries(self):
        return [line.entry for line in self.lines if line.entry is not None]

    def find(self, mount_point):
        """The last entry for ``mount_point`` (the one mount -a would use), or None."""
        mount_point = normpath(mount_point)
        found = None
        for entry in self.entries():
            if normpath(entry.file) == mount_point:
                found = entry
        return found

    def set(self, entry):
        """Replace the entry of ``entry.file`` in place (dropping duplicates) or append it."""
        target = normpath(entry.file)
        new_lines, placed = [], False
        for line in self.lines:
            if line.entry is not None and normpath(line.entry.file) == target:
                if not placed:
                    keep = line.entry == entry
                    new_lines.append(line if keep else _Line(entry.render(), entry))
                    placed = True
                continue
            new_lines.append(line)
        if not placed:
            new_lines.append(_Line(entry.render(), entry))
        self.lines = new_lines

    def remove(self, mount_point):
        target = normpath(mount_point)
        self.lines = [line for line in self.lines if line.entry is None or normpath(line.entry.file) != target]

    def render(self):
        if not self.lines:
            return ""
        return "\n".join(line.text for line in self.lines) + "\n"

    @property
    def changed(self):
        return self.render() != _with_final_newline(self.original)

    def write(self):
        atomic_write(self.path, self.render(), mode=0o644)


def _with_final_newline(text):
    return text if not text or text.endswith("\n") else text + "\n"


def _parse_entry(raw):
    stripped = raw.strip()
    if not stripped or stripped.startswith("#"):
        return None
    fields = stripped.split()
    if len(fields) < 2:
        return None
    fields = [unescape(f) for f in fields[:4]] + fields[4:6]
    defaults = ["", "", "auto", "defaults", "0", "0"]
    fields += defaults[len(fields) :]
    return FstabEntry(*fields[:6])


def fstab_options(opts):
    """Split a mount options string into a list, dropping empties."""
    return [o for o in (opts or "").split(",") if o]


# Options that mount(8) and systemd read from fstab and never hand to the filesystem: a change
# of these alone needs a new fstab line, not a remount of a live volume. Not user, users, owner
# or group: they imply nosuid, nodev and noexec, which the kernel does see.
USERSPACE_OPTIONS = frozenset(("_netdev", "nofail", "noauto", "auto"))
USERSPACE_PREFIXES = ("x-", "comment=")


def kernel_options(opts):
    """The options of ``opts`` that reach the filesystem (what a remount would change)."""
    return [o for o in fstab_options(opts) if o not in USERSPACE_OPTIONS and not o.startswith(USERSPACE_PREFIXES)]
