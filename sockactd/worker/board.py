"""Per-worker scoreboard in shared memory: requests served and the current request's start.

The master creates one memfd per worker before fork and maps it; the worker
writes, the master reads. This costs no system call per request (unlike a
pipe write), and because it is an fd it survives the master's execve in a
standard reload, so the new master image can still watch its old workers.

Layout (native byte order, 8-byte words): requests served (u64), start of
the request in progress on CLOCK_MONOTONIC in seconds (f64, 0.0 when idle),
requests in progress (u64, several with --threads). Then, written only when
the master monitors (metrics-socket or stats: `Board.counting`, set before the
first fork), the counters behind the metrics, all u64: requests by protocol x
status class, the request-duration histogram (one word per bucket of
DURATION_BUCKETS, then +Inf), the durations' sum in nanoseconds, response body
bytes. A worker keeps them in a list of its own (four stores per request, half
the cost of stores to the shared page) and copies them to the board at most a
tick apart (serve.py's sweep, at most 1 s) and when it stops: the master's view
lags by that much, and a worker killed by a signal loses at most that last tick.
Then the heartbeat: when the worker's loop last went round (f64, CLOCK_MONOTONIC;
master/liveness.py). Last, written only with `harakiri` (`Board.describing`, set
before the first fork): the request in progress as "METHOD URI from PEER" (u16
length, then at most WHAT_SIZE bytes), so the master's harakiri line names the
request it kills, as uWSGI's does; with --threads it is the request started last.
Torn reads are harmless: the master only uses these numbers for harakiri,
max-requests and statistics.
"""

from __future__ import annotations

import _thread
import mmap
import os
import struct
import time

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    class Answered(Protocol):
        """What a finished response tells the counters (worker/exchange.py's Response)."""

        code: int  # status code, 0 when none went out
        uwsgi: bool  # came in over the uwsgi protocol
        sent: int  # body bytes written


__all__ = ["DURATION_BUCKETS", "PROTOCOLS", "STATUS_CLASSES", "Board", "Counts"]

PROTOCOLS = ("http", "uwsgi")
STATUS_CLASSES = ("other", "1xx", "2xx", "3xx", "4xx", "5xx")  # index: code // 100 (0: none)
# Request durations in seconds: Prometheus's defaults, made for web request latencies.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_LAYOUT = struct.Struct("=QdQ")
_SERVED = struct.Struct("=Q")
_STARTED = struct.Struct("=dQ")  # start and busy, after `served`
_REQUESTS = _LAYOUT.size // 8  # word index of the first request counter
_BUCKET = _REQUESTS + len(PROTOCOLS) * len(STATUS_CLASSES)
_SUM_NS = _BUCKET + len(DURATION_BUCKETS) + 1
_TX = _SUM_NS + 1
_WORDS = _TX + 1
_HEARTBEAT = _WORDS * 8  # byte offset of the heartbeat, after the counters
_BEAT = struct.Struct("=d")
WHAT_SIZE = 254
_WHAT = _HEARTBEAT + _BEAT.size  # byte offset of the request description
_WHAT_LEN = struct.Struct("=H")
SIZE = _WHAT + _WHAT_LEN.size + WHAT_SIZE
_COUNTS = struct.Struct(f"={_WORDS - _REQUESTS}Q")
_HISTOGRAM = _BUCKET - _REQUESTS  # the histogram's first index in a worker's own list
_bisect_left: Callable[[tuple[float, ...], float], int]  # bisect.bisect_left, once counting


class Counts:
    """A board's counters, read by the master."""

    __slots__ = ("buckets", "duration_ns", "requests", "tx")

    def __init__(self, words: tuple[int, ...] | None = None) -> None:
        words = words or (0,) * (_WORDS - _REQUESTS)
        split = _BUCKET - _REQUESTS
        self.requests = list(words[:split])  # [protocol * len(STATUS_CLASSES) + class]
        self.buckets = list(words[split : split + len(DURATION_BUCKETS) + 1])  # not cumulative
        self.duration_ns = words[_SUM_NS - _REQUESTS]
        self.tx = words[_TX - _REQUESTS]

    def add(self, other: Counts) -> None:
        self.requests = [a + b for a, b in zip(self.requests, other.requests, strict=True)]
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.duration_ns += other.duration_ns
        self.tx += other.tx

    def total(self) -> int:
        return sum(self.requests)

    def to_json(self) -> list[int]:
        return [*self.requests, *self.buckets, self.duration_ns, self.tx]

    @classmethod
    def from_json(cls, words: list[int]) -> Counts:
        if len(words) != _WORDS - _REQUESTS:
            raise ValueError(f"{len(words)} counters, expected {_WORDS - _REQUESTS}")
        return cls(tuple(int(word) for word in words))


class Board:
    counting = False  # set in the master before forking when it monitors (class-wide)
    describing = False  # set in the master before forking when harakiri is on (class-wide)

    def __init__(self, fd: int) -> None:
        self.fd = fd
        if os.fstat(fd).st_size < SIZE:  # a board made by an older sockactd (standard reload)
            os.ftruncate(fd, SIZE)
        self._map = mmap.mmap(fd, SIZE)
        # --threads: handler threads update the same counters (read-modify-write).
        # _thread, not threading: a worker with one thread never needs threading's import.
        self._lock = _thread.allocate_lock()
        self._starts: dict[int, float] = {}  # thread -> start of its request in progress
        self._solo = False  # see single_threaded()
        self._served = 0
        self._start = 0.0
        self._counts: list[int] | None = None  # requests, buckets, body bytes, when counting
        self._seconds = 0.0  # the durations' sum, while counting

    @classmethod
    def create(cls) -> Board:
        fd = os.memfd_create("sockactd-board", os.MFD_CLOEXEC)
        os.ftruncate(fd, SIZE)
        return cls(fd)

    # --- worker side ---------------------------------------------------------
    def single_threaded(self) -> None:
        """Only one thread of this process serves: skip the lock and per-thread table.

        These two calls run on every request; without threads they are a plain
        write to the shared page (what the master reads is unchanged).
        """
        self._solo = True
        self._served = _SERVED.unpack_from(self._map)[0]  # only this process writes it

    def start_counting(self) -> None:
        """Keep the metrics' counters from now on (the worker calls it before serving)."""
        global _bisect_left
        from bisect import bisect_left  # ~1 ms: not on the start-up path of a server without

        _bisect_left = bisect_left
        self._counts = [0] * (_SUM_NS - _REQUESTS + 1)  # the sum is self._seconds

    def publish_counts(self) -> None:
        """Copy this worker's counters to the shared page (serve.py: every tick, and at the end)."""
        counts = self._counts
        if counts is None:
            return
        with self._lock:
            nanoseconds = int(self._seconds * 1e9)
            _COUNTS.pack_into(self._map, _REQUESTS * 8, *counts[:-1], nanoseconds, counts[-1])

    def describe(self, what: str) -> None:
        """Publish the request now in progress (call before request_started)."""
        data = what.encode("utf-8", "replace")[:WHAT_SIZE]
        self._map[_WHAT + _WHAT_LEN.size : _WHAT + _WHAT_LEN.size + len(data)] = data
        _WHAT_LEN.pack_into(self._map, _WHAT, len(data))

    def request_started(self) -> None:
        if self._solo:
            self._start = start = time.monotonic()
            _STARTED.pack_into(self._map, _SERVED.size, start, 1)
            return
        with self._lock:
            self._starts[_thread.get_ident()] = time.monotonic()
            self._publish(0)

    def request_finished(self, response: Answered | None = None) -> None:
        if self._solo:
            self._served += 1
            _LAYOUT.pack_into(self._map, 0, self._served, 0.0, 0)
            counts = self._counts
            if counts is not None and response is not None:  # _count, inlined: per request
                seconds = time.monotonic() - self._start
                code = response.code
                counts[response.uwsgi * 6 + (code // 100 if 100 <= code < 600 else 0)] += 1
                counts[_HISTOGRAM + _bisect_left(DURATION_BUCKETS, seconds)] += 1
                counts[-1] += response.sent
                self._seconds += seconds
            return
        with self._lock:
            start = self._starts.pop(_thread.get_ident(), None)
            self._publish(1)
            if self._counts is not None and response is not None and start is not None:
                self._count(self._counts, response, time.monotonic() - start)

    def _count(self, counts: list[int], response: Answered, seconds: float) -> None:
        code = response.code
        counts[response.uwsgi * 6 + (code // 100 if 100 <= code < 600 else 0)] += 1
        counts[_HISTOGRAM + _bisect_left(DURATION_BUCKETS, seconds)] += 1
        counts[-1] += response.sent
        self._seconds += seconds

    def beat(self, now: float) -> None:
        """The worker's loop is alive at `now` (time.monotonic()); a plain write, no syscall."""
        _BEAT.pack_into(self._map, _HEARTBEAT, now)

    def _publish(self, finished: int) -> None:
        # The master's harakiri looks at the oldest request still in progress, so one
        # hung thread is seen even while its siblings keep serving.
        served = _LAYOUT.unpack_from(self._map)[0] + finished
        starts = self._starts.values()
        _LAYOUT.pack_into(self._map, 0, served, min(starts, default=0.0), len(self._starts))

    # --- master side ---------------------------------------------------------
    def last_beat(self) -> float:
        """When the worker's loop last went round (monotonic), 0.0 before its first beat."""
        return float(_BEAT.unpack_from(self._map, _HEARTBEAT)[0])

    def read(self) -> tuple[int, float, int]:
        """(requests served, monotonic start of the oldest request in progress or 0.0, busy)."""
        served, started, busy = _LAYOUT.unpack_from(self._map)
        return int(served), float(started), int(busy)

    def described(self) -> str:
        """The request a worker published last (empty without `harakiri`)."""
        (size,) = _WHAT_LEN.unpack_from(self._map, _WHAT)
        start = _WHAT + _WHAT_LEN.size
        return self._map[start : start + min(size, WHAT_SIZE)].decode("utf-8", "replace")

    def counts(self) -> Counts:
        return Counts(_COUNTS.unpack_from(self._map, _REQUESTS * 8))

    def close(self) -> None:
        self._map.close()
        os.close(self.fd)
