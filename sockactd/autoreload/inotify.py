"""py-autoreload's inotify: pyinotify's fd-level API, driven by the master's selector.

Watches directories (watch.py keeps the names it cares about) and hands each
event to a callback as (watch descriptor, mask, name). Never blocks: the fd is
non-blocking and read only when the selector says it is readable. Imported only
with py-autoreload on and reload-engine other than poll.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import Any, Final

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # its asyncore import; never used
    import pyinotify

__all__ = ["APPEARED", "GONE", "IS_DIRECTORY", "OVERFLOW", "Inotify"]

log = logging.getLogger(__name__)

MASK: Final[int] = (
    pyinotify.IN_ATTRIB | pyinotify.IN_CLOSE_WRITE | pyinotify.IN_MOVED_TO
    | pyinotify.IN_MOVED_FROM | pyinotify.IN_CREATE | pyinotify.IN_DELETE
    | pyinotify.IN_DELETE_SELF | pyinotify.IN_MOVE_SELF | pyinotify.IN_ONLYDIR
)  # fmt: skip
OVERFLOW: Final[int] = pyinotify.IN_Q_OVERFLOW
GONE: Final[int] = pyinotify.IN_IGNORED | pyinotify.IN_MOVE_SELF | pyinotify.IN_DELETE_SELF
IS_DIRECTORY: Final[int] = pyinotify.IN_ISDIR
APPEARED: Final[int] = pyinotify.IN_CREATE | pyinotify.IN_MOVED_TO


class Inotify:
    def __init__(self, on_event: Callable[[int, int, str], None]) -> None:
        self._on_event = on_event
        self._manager = pyinotify.WatchManager()
        self._notifier = pyinotify.Notifier(self._manager, default_proc_fun=self._event)
        os.set_inheritable(self._manager.get_fd(), False)
        os.set_blocking(self._manager.get_fd(), False)

    def fileno(self) -> int:
        fd: int = self._manager.get_fd()
        return fd

    def add(self, directory: str) -> int | str:
        """Watch `directory`: its watch descriptor, or why it cannot be watched."""
        try:
            added = self._manager.add_watch(directory, MASK, quiet=False)
        except pyinotify.WatchManagerError as exc:
            return str(exc.args[0]) if exc.args else "inotify_add_watch failed"
        wd: int = added[directory]
        return wd

    def remove(self, wd: int) -> None:
        self._manager.rm_watch(wd, quiet=True)

    def read(self) -> None:
        """Read what is pending and call back for each event (the fd was readable)."""
        try:
            self._notifier.read_events()
        except pyinotify.NotifierError as exc:
            log.warning("py-autoreload: cannot read inotify events: %s", exc)
            return
        self._notifier.process_events()

    def _event(self, event: Any) -> None:
        self._on_event(event.wd, event.mask, event.name or "")

    def close(self) -> None:
        self._notifier.stop()  # closes the fd, which drops every watch
