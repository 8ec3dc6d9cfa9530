"""py-autoreload's inotify masks: what it asks of a watched directory, and reads in an event.

watch.py watches directories with `MASK` through triggers/pyinotify_fd.py's `Inotify`,
the fd-level API the trigger files use too, and tests each event's mask with the others.
Imported only with py-autoreload on.
"""

from __future__ import annotations

from typing import Final

from sockactd.triggers.pyinotify_fd import pyinotify

__all__ = ["APPEARED", "GONE", "IS_DIRECTORY", "MASK", "OVERFLOW"]

MASK: Final[int] = (
    pyinotify.IN_ATTRIB | pyinotify.IN_CLOSE_WRITE | pyinotify.IN_MOVED_TO
    | pyinotify.IN_MOVED_FROM | pyinotify.IN_CREATE | pyinotify.IN_DELETE
    | pyinotify.IN_DELETE_SELF | pyinotify.IN_MOVE_SELF | pyinotify.IN_ONLYDIR
)  # fmt: skip
OVERFLOW: Final[int] = pyinotify.IN_Q_OVERFLOW
GONE: Final[int] = pyinotify.IN_IGNORED | pyinotify.IN_MOVE_SELF | pyinotify.IN_DELETE_SELF
IS_DIRECTORY: Final[int] = pyinotify.IN_ISDIR
APPEARED: Final[int] = pyinotify.IN_CREATE | pyinotify.IN_MOVED_TO
