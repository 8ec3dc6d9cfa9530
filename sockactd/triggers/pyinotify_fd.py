"""pyinotify's fd-level API, driven by the master's selector: the one place it is imported.

Both inotify users in the master -- trigger files (triggers/inotify.py) and
py-autoreload (autoreload/watch.py) -- watch directories through `Inotify`: a
non-blocking, close-on-exec inotify fd, read only when the selector says it is
readable, every event handed to a callback as (watch descriptor, mask, name).

Rule 1: pyinotify is imported here only, without its asyncore DeprecationWarning and
        without the stderr handler it installs on its logger: what it logs goes
        through sockactd's logging, once. The others take `pyinotify` (its IN_*
        masks) from here.
Rule 2: a failure is a value, never a pyinotify log line: `add` returns why it
        cannot watch, `read` why it cannot read, and `remove` of a watch the kernel
        already dropped (a deleted or unmounted directory: IN_IGNORED follows) does
        nothing.

This module never blocks, sleeps or starts a thread (no pyinotify loop(),
ThreadedNotifier or asyncore), and knows nothing of what an event means.
Imported only with trigger files or py-autoreload on.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import Any

with warnings.catch_warnings():
    # pyinotify imports asyncore (deprecated in 3.11, pyasyncore from 3.12); we never use it.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pyinotify

__all__ = ["Inotify", "pyinotify"]

# Rule 1: pyinotify installs its own stderr handler; let its messages go through ours.
for _handler in list(logging.getLogger("pyinotify").handlers):
    logging.getLogger("pyinotify").removeHandler(_handler)


class Inotify:
    """One inotify fd; `on_event(wd, mask, name)` for each event `read` finds."""

    def __init__(self, on_event: Callable[[int, int, str], None]) -> None:
        self._on_event = on_event
        self._manager = pyinotify.WatchManager()
        self._notifier = pyinotify.Notifier(self._manager, default_proc_fun=self._event)
        self._closed = False
        os.set_inheritable(self._manager.get_fd(), False)
        os.set_blocking(self._manager.get_fd(), False)

    def fileno(self) -> int:
        fd: int = self._manager.get_fd()
        return fd

    def add(self, directory: str, mask: int) -> int | str:
        """Watch `directory` for `mask`: its watch descriptor, or why it cannot be watched."""
        try:
            added = self._manager.add_watch(directory, mask, quiet=False)
        except pyinotify.WatchManagerError as exc:
            return str(exc.args[0]) if exc.args else "inotify_add_watch failed"
        wd: int = added[directory]
        return wd

    def remove(self, wd: int) -> None:
        """Stop watching `wd`; nothing to do if the kernel dropped it already (Rule 2)."""
        try:
            self._manager.rm_watch(wd, quiet=False)
        except pyinotify.WatchManagerError:
            pass  # EINVAL: gone with its directory; pyinotify forgets it at IN_IGNORED

    def read(self) -> str | None:
        """Read what is pending, calling back for each event; None, or why it could not."""
        try:
            self._notifier.read_events()
        except pyinotify.NotifierError as exc:
            return str(exc)
        self._notifier.process_events()
        return None

    def _event(self, event: Any) -> None:
        self._on_event(event.wd, event.mask, event.name or "")

    def close(self) -> None:
        """Close the fd, which drops every watch; again, nothing."""
        if not self._closed:
            self._closed = True
            self._notifier.stop()
