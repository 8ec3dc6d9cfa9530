"""Per-worker scoreboard in shared memory: requests served and the current request's start.

The master creates one memfd per worker before fork and maps it; the worker
writes, the master reads. This costs no system call per request (unlike a
pipe write), and because it is an fd it survives the master's execve in a
standard reload, so the new master image can still watch its old workers.

Layout (native byte order, 8-byte aligned): requests served (u64), start of
the request in progress on CLOCK_MONOTONIC in seconds (f64, 0.0 when idle),
requests in progress (u64, several with --threads).
Torn reads are harmless: the master only uses these numbers for harakiri,
max-requests and statistics.
"""

from __future__ import annotations

import _thread
import mmap
import os
import struct
import time

__all__ = ["Board"]

_LAYOUT = struct.Struct("=QdQ")
_SERVED = struct.Struct("=Q")
_STARTED = struct.Struct("=dQ")  # start and busy, after `served`


class Board:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, _LAYOUT.size)
        # --threads: handler threads update the same counters (read-modify-write).
        # _thread, not threading: a worker with one thread never needs threading's import.
        self._lock = _thread.allocate_lock()
        self._starts: dict[int, float] = {}  # thread -> start of its request in progress
        self._solo = False  # see single_threaded()
        self._served = 0

    @classmethod
    def create(cls) -> Board:
        fd = os.memfd_create("sockactd-board", os.MFD_CLOEXEC)
        os.ftruncate(fd, _LAYOUT.size)
        return cls(fd)

    # --- worker side ---------------------------------------------------------
    def single_threaded(self) -> None:
        """Only one thread of this process serves: skip the lock and per-thread table.

        These two calls run on every request; without threads they are a plain
        write to the shared page (what the master reads is unchanged).
        """
        self._solo = True
        self._served = _SERVED.unpack_from(self._map)[0]  # only this process writes it

    def request_started(self) -> None:
        if self._solo:
            _STARTED.pack_into(self._map, _SERVED.size, time.monotonic(), 1)
            return
        with self._lock:
            self._starts[_thread.get_ident()] = time.monotonic()
            self._publish(0)

    def request_finished(self) -> None:
        if self._solo:
            self._served += 1
            _LAYOUT.pack_into(self._map, 0, self._served, 0.0, 0)
            return
        with self._lock:
            self._starts.pop(_thread.get_ident(), None)
            self._publish(1)

    def _publish(self, finished: int) -> None:
        # The master's harakiri looks at the oldest request still in progress, so one
        # hung thread is seen even while its siblings keep serving.
        served = _LAYOUT.unpack_from(self._map)[0] + finished
        starts = self._starts.values()
        _LAYOUT.pack_into(self._map, 0, served, min(starts, default=0.0), len(self._starts))

    # --- master side ---------------------------------------------------------
    def read(self) -> tuple[int, float, int]:
        """(requests served, monotonic start of the oldest request in progress or 0.0, busy)."""
        served, started, busy = _LAYOUT.unpack_from(self._map)
        return int(served), float(started), int(busy)

    def close(self) -> None:
        self._map.close()
        os.close(self.fd)
