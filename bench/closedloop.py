"""Closed-loop HTTP clients that each record what they got: fairness, not just throughput.

Load: `run_clients(port, clients, seconds, keepalive)` forks a few processes, each running
a share of the clients as threads (blocking sockets: the GIL is released while they wait,
and the servers under test answer at most a few hundred requests per second). A client
sends a GET, reads the whole response, and sends the next at once, until the time is up;
with `keepalive` on one connection (it reconnects when the server closes it), without it
on a new connection per request (`Connection: close`). Every request is recorded with
CLOCK_MONOTONIC (shared by every process), its client, and the body: the apps in
bench/apps answer with the serving worker's PID.

Analysis (pure, unit-tested in tests/unit/test_bench_closedloop.py): `summarize` gives
req/s, p50/p99/max latency, requests per client (min, max) and per worker, new connections
per worker (the worker that answered each one's first request), errors.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Final

from bench.common import GET_CLOSE, GET_KEEPALIVE

_PROCESSES: Final = 4
_TIMEOUT: Final = 30.0


@dataclasses.dataclass(frozen=True)
class Record:
    client: int
    start: float
    end: float
    worker: str  # the body (the worker's PID); "" for an error
    error: str = ""  # "", or what went wrong: "reset", "timeout", "status 503", ...
    fresh: bool = False  # the first request on a connection this client had just opened


# ---------------------------------------------------------------- load


class _Conn:
    """One client's keep-alive connection: send a request, read exactly one response."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.fresh = False  # the last request went on a connection opened for it

    def request(self, keepalive: bool) -> tuple[int, bytes, bool]:
        """(status, body, server kept the connection open)."""
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=_TIMEOUT)
            self.buffer = b""
            self.fresh = True
        else:
            self.fresh = False
        self.sock.sendall(GET_KEEPALIVE if keepalive else GET_CLOSE)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        length = headers.get(b"content-length")
        if length is None:  # close-delimited
            while self._fill(eof_ok=True):
                pass
            body, self.buffer = self.buffer, b""
            return status, body, False
        while len(self.buffer) < int(length):
            self._fill()
        body, self.buffer = self.buffer[: int(length)], self.buffer[int(length) :]
        return status, body, keepalive and headers.get(b"connection") != b"close"

    def _fill(self, eof_ok: bool = False) -> bool:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            if eof_ok:
                return False
            raise ConnectionResetError("closed before the response was complete")
        self.buffer += chunk
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _client(client: int, port: int, until: float, keepalive: bool, out: list[Record]) -> None:
    conn = _Conn(port)
    while (start := time.monotonic()) < until:
        try:
            status, body, open_after = conn.request(keepalive)
        except TimeoutError:
            out.append(Record(client, start, time.monotonic(), "", "timeout"))
            conn.close()
            continue
        except OSError as exc:
            out.append(Record(client, start, time.monotonic(), "", type(exc).__name__))
            conn.close()
            time.sleep(0.01)  # a server that is down is probed, not spun on
            continue
        end = time.monotonic()
        if status != 200:
            out.append(Record(client, start, end, "", f"status {status}"))
        else:
            out.append(Record(client, start, end, body.decode(errors="replace"), "", conn.fresh))
        if not open_after:
            conn.close()
    conn.close()


def _process(ids: Sequence[int], port: int, until: float, keepalive: bool, out: Connection) -> None:
    records: list[Record] = []
    threads = [
        threading.Thread(target=_client, args=(n, port, until, keepalive, records)) for n in ids
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.send(records)
    out.close()


def run_clients(port: int, clients: int, seconds: float, keepalive: bool) -> list[Record]:
    """Run `clients` closed-loop clients for `seconds` against 127.0.0.1:`port`; all records."""
    until = time.monotonic() + seconds
    context = multiprocessing.get_context("fork")
    workers = []
    for share in range(min(_PROCESSES, clients)):
        ids = list(range(share, clients, _PROCESSES))
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_process, args=(ids, port, until, keepalive, send))
        process.start()
        send.close()
        workers.append((process, receive))
    records: list[Record] = []
    for process, receive in workers:
        records += receive.recv()
        process.join(_TIMEOUT + seconds)
    return records


# ---------------------------------------------------------------- analysis


@dataclasses.dataclass(frozen=True)
class Summary:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    client_min: int  # fewest requests any one client had answered
    client_max: int
    per_worker: tuple[int, ...]  # requests answered by each worker, most first
    clients_per_worker: tuple[int, ...]  # clients by the worker that answered most of theirs
    errors: dict[str, int]
    # connections by the worker that answered their first request, most first, over the
    # whole run (keep-alive clients connect during the warm-up): where no hand-over came
    # before that answer, the worker that accepted the connection
    connections_per_worker: tuple[int, ...] = ()

    @property
    def client_ratio(self) -> float:
        return math.inf if not self.client_min else self.client_max / self.client_min


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (0 < fraction <= 1); 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarize(records: Sequence[Record], clients: int, start: float, stop: float) -> Summary:
    """What happened to requests that *started* in [start, stop) (the warm-up is left out).

    A client with no request answered in the window counts as 0 (starved), so
    `clients` is passed in rather than read from the records.
    """
    window = [r for r in records if start <= r.start < stop]
    answered = [r for r in window if not r.error]
    latencies = [(r.end - r.start) * 1000 for r in answered]
    per_client = Counter(r.client for r in answered)
    counts = [per_client.get(n, 0) for n in range(clients)]
    return Summary(
        requests_per_s=len(answered) / (stop - start),
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies, default=0.0),
        client_min=min(counts, default=0),
        client_max=max(counts, default=0),
        per_worker=_most_first(Counter(r.worker for r in answered)),
        clients_per_worker=_clients_per_worker(answered),
        errors=dict(Counter(r.error for r in window if r.error)),
        connections_per_worker=_most_first(Counter(r.worker for r in records if r.fresh)),
    )


def _most_first(counts: Counter[str]) -> tuple[int, ...]:
    return tuple(sorted(counts.values(), reverse=True))


def _clients_per_worker(answered: Sequence[Record]) -> tuple[int, ...]:
    served_by: dict[int, Counter[str]] = {}
    for record in answered:
        served_by.setdefault(record.client, Counter())[record.worker] += 1
    return _most_first(Counter(counts.most_common(1)[0][0] for counts in served_by.values()))
