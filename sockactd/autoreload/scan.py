"""py-autoreload's pure helpers: what to ignore, where inotify cannot be trusted, stat scans.

* `Ignore`: a path is ignored when a glob matches the whole path or one of its
  names (so `__pycache__` ignores everything under such a directory, `*.swp` a
  swap file, `/usr/lib/*` the system's modules). DEFAULT_IGNORE always applies.
* `inotify_unreliable(directory, mounts)`: inotify reports only changes made
  through this kernel, so on a network or FUSE filesystem (or a host directory
  shared into a VM) another machine's save is never seen. Those directories are
  scanned instead. `mount_types()` reads /proc/self/mountinfo once.
* `Snapshot`: what a stat scan compares (mtime, size, inode; None when missing).

Nothing here watches, sleeps or logs.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

__all__ = [
    "DEFAULT_IGNORE",
    "Ignore",
    "Snapshot",
    "files_under",
    "inotify_unreliable",
    "mount_types",
    "snapshot",
]

DEFAULT_IGNORE: Final = (
    "__pycache__", "*.pyc", "*.pyo", ".git", ".hg", ".svn",
    "*.swp", "*.swx", "*~", ".#*", "#*#", "4913",  # vim, emacs; 4913 is vim's write test
)  # fmt: skip
REMOTE_TYPES: Final = frozenset(
    ("nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "vboxsf", "fuse", "fuseblk",
     "ceph", "glusterfs", "afs", "lustre", "gpfs", "davfs", "sshfs")
)  # fmt: skip

Snapshot = tuple[int, int, int] | None


class Ignore:
    def __init__(self, globs: Iterable[str]) -> None:
        self.globs = (*DEFAULT_IGNORE, *globs)

    def __call__(self, path: str) -> bool:
        names = [name for name in path.split("/") if name]
        return any(
            fnmatch.fnmatchcase(path, glob) or any(fnmatch.fnmatchcase(n, glob) for n in names)
            for glob in self.globs
        )


def snapshot(path: str) -> Snapshot:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def files_under(directory: str, ignore: Ignore) -> Iterator[str]:
    """Every file under `directory`, not descending into ignored directories."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not ignore(os.path.join(root, d))]
        for name in files:
            path = os.path.join(root, name)
            if not ignore(path):
                yield path


def mount_types(mountinfo: str = "/proc/self/mountinfo") -> dict[str, str]:
    """{mount point: filesystem type}; empty when unreadable (then inotify is trusted)."""
    mounts: dict[str, str] = {}
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                before, _, after = line.partition(" - ")
                fields = before.split()
                if len(fields) >= 5 and after:
                    point = fields[4].replace("\\040", " ").replace("\\011", "\t")
                    mounts[point.replace("\\012", "\n").replace("\\134", "\\")] = after.split()[0]
    except OSError:
        pass
    return mounts


def inotify_unreliable(directory: str, mounts: Mapping[str, str]) -> bool:
    """Whether `directory` (a real path) is on a filesystem whose inotify misses changes."""
    best = ""
    for point in mounts:
        inside = directory == point or directory.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best = point
    kind = mounts.get(best, "")
    return kind in REMOTE_TYPES or kind.startswith("fuse.")
