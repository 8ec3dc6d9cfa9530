"""The master's selector, with events that carry identity instead of fd numbers.

Rule 1: what the selector reports is a `Watch` -- one registration of one
        file, made by one owner -- never a bare fd number. A callback gets only
        the events; it already knows its worker or connection.
Rule 2: a watch cancelled earlier in a `select()` batch is dropped when a later
        entry of the same batch names it. Tearing down a worker closes its fds,
        the kernel hands the same numbers to the next pipe or memfd (a worker
        forked later in the same batch), and without this rule the dead
        worker's stale "readable" would read the new worker's pipe or board.
This module never decides what an event means; it only delivers or drops it.
"""

from __future__ import annotations

import selectors
from collections.abc import Callable
from typing import Protocol

__all__ = ["READ", "WRITE", "FileLike", "Loop", "Watch"]

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE


class FileLike(Protocol):
    def fileno(self) -> int: ...


class Watch:
    """One registration. `live` turns False for good once it is cancelled."""

    __slots__ = ("callback", "events", "file", "live")

    def __init__(self, file: int | FileLike, events: int, callback: Callable[[int], None]) -> None:
        self.file = file
        self.events = events
        self.callback = callback
        self.live = True

    def __repr__(self) -> str:
        return f"<watch {self.file!r} events={self.events} live={self.live}>"


class Loop:
    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self._selector = selector if selector is not None else selectors.DefaultSelector()

    def watch(
        self, file: int | FileLike, callback: Callable[[int], None], events: int = READ
    ) -> Watch:
        """Call `callback(events)` whenever `file` is ready for `events` (READ, WRITE)."""
        watch = Watch(file, events, callback)
        self._selector.register(file, events, watch)
        return watch

    def modify(self, watch: Watch, events: int) -> None:
        if watch.live and events != watch.events:
            self._selector.modify(watch.file, events, watch)
            watch.events = events

    def cancel(self, watch: Watch | None) -> None:
        """Stop delivering `watch`, including entries already in the current batch.

        Call it before closing the file. Cancelling twice, or None, is a no-op.
        """
        if watch is None or not watch.live:
            return
        watch.live = False
        try:
            self._selector.unregister(watch.file)
        except (KeyError, ValueError):
            pass  # the file was closed first; the selector forgot it with the fd

    def run_once(self, timeout: float | None) -> int:
        """Wait up to `timeout` for one batch and deliver it; returns how many were delivered."""
        delivered = 0
        for key, events in self._selector.select(timeout):
            watch: Watch = key.data
            if watch.live:  # Rule 2
                watch.callback(events)
                delivered += 1
        return delivered

    def close(self) -> None:
        self._selector.close()
