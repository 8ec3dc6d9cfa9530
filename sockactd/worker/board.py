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

import mmap
import os
import struct
import time

__all__ = ["Board"]

_LAYOUT = struct.Struct("=QdQ")


class Board:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, _LAYOUT.size)

    @classmethod
    def create(cls) -> Board:
        fd = os.memfd_create("sockactd-board", os.MFD_CLOEXEC)
        os.ftruncate(fd, _LAYOUT.size)
        return cls(fd)

    # --- worker side ---------------------------------------------------------
    def request_started(self) -> None:
        served, _, busy = _LAYOUT.unpack_from(self._map)
        _LAYOUT.pack_into(self._map, 0, served, time.monotonic(), busy + 1)

    def request_finished(self) -> None:
        served, started, busy = _LAYOUT.unpack_from(self._map)
        busy = max(busy - 1, 0)
        _LAYOUT.pack_into(self._map, 0, served + 1, started if busy else 0.0, busy)

    # --- master side ---------------------------------------------------------
    def read(self) -> tuple[int, float, int]:
        """(requests served, monotonic start of the oldest request in progress or 0.0, busy)."""
        served, started, busy = _LAYOUT.unpack_from(self._map)
        return int(served), float(started), int(busy)

    def close(self) -> None:
        self._map.close()
        os.close(self.fd)
