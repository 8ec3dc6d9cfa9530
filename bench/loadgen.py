"""Time-bounded HTTP load that records every request's outcome, and what to read from it.

Load: `run_load(port, seconds, clients)` forks `clients` processes (no GIL between
them); each opens a new loopback connection per request, sends one GET, reads to EOF
and records (start, end, kind, version) with CLOCK_MONOTONIC, which every process on
the machine shares, so a trigger timestamp taken by the caller lines up with them.
After a failure a client waits 10 ms, so a server that is down is probed at a steady
rate instead of a spin that would starve the server's own CPU.

Analysis (pure, unit-tested in tests/unit/test_bench_loadgen.py): failures by kind,
time to 100% new version, lowest requests/s in any one-second window, longest gap
without a successful response (and where it was), p99 during the reload vs steady.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import itertools
import multiprocessing
import socket
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Final

from bench.common import GET_CLOSE

FAILURE_PAUSE: Final = 0.01


class Kind(enum.Enum):
    OK = "ok"
    REFUSED = "refused"
    RESET = "reset"
    TIMEOUT = "timeout"
    HTTP_5XX = "5xx"
    OTHER = "other"


FAILURE_KINDS: Final = tuple(kind for kind in Kind if kind is not Kind.OK)


@dataclasses.dataclass(frozen=True)
class Outcome:
    start: float  # time.monotonic()
    end: float
    kind: Kind
    version: str = ""  # first word of the body: the app's VERSION


# ---------------------------------------------------------------- load


def classify(raw: bytes) -> tuple[Kind, str]:
    """Kind and version of one complete response (everything read until EOF)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if not sep or len(parts) < 2 or not parts[1].isdigit():
        return (Kind.RESET if not raw else Kind.OTHER), ""
    status = int(parts[1])
    if status >= 500:
        return Kind.HTTP_5XX, ""
    if status != 200:
        return Kind.OTHER, ""
    words = body.split()
    return Kind.OK, (words[0].decode(errors="replace") if words else "")


def one_request(port: int, timeout: float) -> tuple[Kind, str]:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(GET_CLOSE)
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    except ConnectionRefusedError:
        return Kind.REFUSED, ""
    except (ConnectionResetError, BrokenPipeError):
        return Kind.RESET, ""
    except TimeoutError:
        return Kind.TIMEOUT, ""
    except OSError:
        return Kind.OTHER, ""
    return classify(b"".join(chunks))


def _client(port: int, until: float, timeout: float, out: Connection) -> None:
    # bounded: no request starts after `until`, and each one gives up after `timeout`
    records = []
    while (start := time.monotonic()) < until:
        kind, version = one_request(port, timeout)
        records.append((start, time.monotonic(), kind.value, version))
        if kind is not Kind.OK:
            time.sleep(FAILURE_PAUSE)
    out.send(records)
    out.close()


class Load:
    """`clients` processes sending requests until `started + seconds`; `join()` the outcomes."""

    def __init__(self, port: int, seconds: float, clients: int, timeout: float = 5.0) -> None:
        self.started = time.monotonic()
        self.until = self.started + seconds
        context = multiprocessing.get_context("fork")
        self._pipes: list[Connection] = []
        self._procs = []
        for _ in range(clients):
            receive, send = context.Pipe(duplex=False)
            proc = context.Process(target=_client, args=(port, self.until, timeout, send))
            proc.start()
            send.close()
            self._pipes.append(receive)
            self._procs.append(proc)

    def join(self) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            for pipe in self._pipes:
                for start, end, kind, version in pipe.recv():
                    outcomes.append(Outcome(start, end, Kind(kind), version))
        finally:
            for pipe in self._pipes:
                pipe.close()
            for proc in self._procs:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        outcomes.sort(key=lambda o: o.start)
        return outcomes


# ---------------------------------------------------------------- analysis


def failures(outcomes: Sequence[Outcome]) -> dict[Kind, int]:
    counts: dict[Kind, int] = dict.fromkeys(FAILURE_KINDS, 0)
    for outcome in outcomes:
        if outcome.kind is not Kind.OK:
            counts[outcome.kind] += 1
    return counts


def time_to_new(outcomes: Sequence[Outcome], trigger: float, new: str) -> float | None:
    """Seconds from `trigger` until every later response carries version `new`.

    That is the end of the last response with another version; None when the last
    successful response is not `new` (the new code never took over).
    """
    ok = sorted((o for o in outcomes if o.kind is Kind.OK), key=lambda o: o.end)
    if not ok or ok[-1].version != new:
        return None
    last_old = max((o.end for o in ok if o.version != new), default=trigger)
    return max(last_old - trigger, 0.0)


def lowest_window_rate(
    outcomes: Sequence[Outcome], start: float, stop: float, step: float = 0.05
) -> float:
    """Fewest successful responses completed in any one-second window inside [start, stop]."""
    ends = sorted(o.end for o in outcomes if o.kind is Kind.OK)
    lowest = float("inf")
    t = start
    while t + 1.0 <= stop + 1e-9:
        count = bisect.bisect_left(ends, t + 1.0) - bisect.bisect_left(ends, t)
        lowest = min(lowest, count)
        t += step
    return 0.0 if lowest == float("inf") else float(lowest)


def rate(outcomes: Sequence[Outcome], start: float, stop: float) -> float:
    """Successful responses per second completed within [start, stop)."""
    count = sum(1 for o in outcomes if o.kind is Kind.OK and start <= o.end < stop)
    return count / (stop - start) if stop > start else 0.0


def longest_gap(outcomes: Sequence[Outcome], start: float, stop: float) -> float:
    """Longest time inside [start, stop] with no successful response completing."""
    begin, end = gap_span(outcomes, start, stop)
    return end - begin


def gap_span(outcomes: Sequence[Outcome], start: float, stop: float) -> tuple[float, float]:
    """(begin, end) of the longest time inside [start, stop] with no successful response."""
    ends = [start, *sorted(o.end for o in outcomes if o.kind is Kind.OK and start < o.end < stop)]
    ends.append(stop)
    return max(itertools.pairwise(ends), key=lambda pair: pair[1] - pair[0])


def p99(outcomes: Sequence[Outcome], start: float, stop: float) -> float | None:
    """99th percentile latency (seconds) of requests started in [start, stop), failures too."""
    latencies = sorted(o.end - o.start for o in outcomes if start <= o.start < stop)
    if not latencies:
        return None
    return latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
