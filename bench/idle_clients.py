"""Thousands of keep-alive HTTP clients that are idle most of the time, cheaply (asyncio).

Load: `start_idle_clients(port, plan)()` forks one process per `PER_PROCESS` clients; each
runs its share as asyncio protocols (no thread, no task per client once connected: a
client is a small object with a timer), so 10,000 connections cost a few MB here and
leave the CPU to the server. Client i connects at `start + ramp * i / clients` (the
connects are spread so a burst does not overflow the server's accept queue) and sends
`GET /` once every `interval` seconds on its keep-alive connection, at its own random
phase (spread, not in lockstep); if an answer is late the next request goes at once
after it, never two at a time. A connection the server closed is opened again at the
next request. Every wait is bounded: a connect gives up after `CONNECT_TIMEOUT`, and
everything stops at `end`.

What is counted, per process, and merged by `Outcome.merge`:
- latency of each request sent in [measure, end) and answered: from the moment the
  client wanted it sent (a reconnect, if the server had closed the connection, is part
  of it) to the last byte of the answer;
- each client's longest wait over the whole run (connect, or an answer), a wait still
  open at `end` counted up to `end`;
- errors by kind, and the connections open at the middle of the window.

The caller raises RLIMIT_NOFILE before forking (the children inherit it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Final

from bench.common import GET_KEEPALIVE

PER_PROCESS: Final = 5000
CONNECT_TIMEOUT: Final = 10.0


@dataclasses.dataclass(frozen=True)
class Plan:
    """When things happen (CLOCK_MONOTONIC, shared by every process) and how many clients."""

    clients: int
    start: float  # the first connect
    ramp: float  # connects spread over this long
    measure: float  # the window counted for req/s and latency starts here
    end: float  # everything stops here
    interval: float = 1.0


@dataclasses.dataclass
class Outcome:
    latencies_ms: list[float]  # answered requests sent in the window
    longest_wait_s: list[float]  # one per client, whole run
    errors: Counter[str]
    open_mid: int  # connections open at the middle of the window

    @staticmethod
    def merge(parts: Sequence[Outcome]) -> Outcome:
        errors: Counter[str] = Counter()
        for part in parts:
            errors.update(part.errors)
        return Outcome(
            [x for part in parts for x in part.latencies_ms],
            [x for part in parts for x in part.longest_wait_s],
            errors,
            sum(part.open_mid for part in parts),
        )


class _Client(asyncio.Protocol):
    """One keep-alive client: connect, then a request every interval, one at a time."""

    def __init__(self, gen: _Generator, phase: float) -> None:
        self.gen = gen
        self.phase = phase
        self.transport: asyncio.Transport | None = None
        self.connecting = False
        self.buffer = b""
        self.due = 0.0  # when the current or next request is (was) wanted
        self.waiting_since = 0.0  # 0: not waiting for anything
        self.in_flight = False
        self.longest = 0.0

    # --- driven by timers -------------------------------------------------------------
    def connect(self) -> None:
        if self.connecting or time.monotonic() >= self.gen.plan.end:
            return
        self.connecting = True
        if not self.waiting_since:
            self.waiting_since = time.monotonic()
        self.gen.loop.create_task(self._connect())

    async def _connect(self) -> None:
        timeout = min(CONNECT_TIMEOUT, max(0.01, self.gen.plan.end - time.monotonic()))
        try:
            await asyncio.wait_for(
                self.gen.loop.create_connection(lambda: self, "127.0.0.1", self.gen.port),
                timeout,
            )
        except TimeoutError:
            self._failed("connect timeout")
        except OSError as exc:
            self._failed(f"connect {type(exc).__name__}")
        finally:
            self.connecting = False

    def _failed(self, kind: str) -> None:
        self.gen.errors[kind] += 1
        self._schedule(time.monotonic() + self.gen.plan.interval, self.connect)

    def send(self) -> None:
        now = time.monotonic()
        if now >= self.gen.plan.end:
            return
        if not self.waiting_since:
            self.waiting_since = now
        self.in_flight = True
        if self.transport is None:
            self.connect()  # connection_made sends it
            return
        self.transport.write(GET_KEEPALIVE)

    def _schedule(self, when: float, what: object) -> None:
        if when < self.gen.plan.end:
            self.gen.loop.call_at(when, what)  # type: ignore[arg-type]

    # --- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""
        self.gen.open += 1
        now = time.monotonic()
        if self.in_flight:
            transport.write(GET_KEEPALIVE)
            return
        self._waited(now)
        if not self.due:  # first connection: the first request at this client's phase
            self.due = now + self.phase
            self._schedule(self.due, self.send)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end].lower()
        length = _body_length(head)
        if len(self.buffer) < head_end + 4 + length:
            return
        self.buffer = self.buffer[head_end + 4 + length :]
        self._answered(time.monotonic(), status_ok=head.startswith(b"http/1.1 200"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.gen.open -= 1
        if self.gen.finished:
            return  # our own close at the end
        if self.in_flight:
            self.gen.errors["closed before the answer"] += 1
            self._schedule(time.monotonic() + 0.1, self.connect)  # the wait goes on
        else:
            self.gen.errors["closed while idle"] += 1

    # --- bookkeeping ------------------------------------------------------------------
    def _waited(self, now: float) -> None:
        if self.waiting_since:
            self.longest = max(self.longest, now - self.waiting_since)
            self.waiting_since = 0.0

    def _answered(self, now: float, status_ok: bool) -> None:
        plan = self.gen.plan
        wanted = self.waiting_since
        self.in_flight = False
        self._waited(now)
        if not status_ok:
            self.gen.errors["not 200"] += 1
        elif plan.measure <= wanted < plan.end:
            self.gen.latencies.append((now - wanted) * 1000)
        self.due = max(self.due + plan.interval, now)
        self._schedule(self.due, self.send)

    def finish(self, end: float) -> float:
        if self.waiting_since:
            self.longest = max(self.longest, end - self.waiting_since)
        if self.transport is not None:
            self.transport.abort()
        return self.longest


def _body_length(head: bytes) -> int:
    """Content-Length of a lower-cased response head (the apps here always send one)."""
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    stop = head.find(b"\r\n", at + 17)
    return int(head[at + 17 : stop if stop >= 0 else len(head)])


class _Generator:
    def __init__(self, port: int, plan: Plan, ids: Sequence[int]) -> None:
        self.port = port
        self.plan = plan
        self.ids = ids
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.open = 0
        self.open_mid = 0
        self.finished = False

    def run(self) -> Outcome:
        plan = self.plan
        rng = random.Random(self.ids[0] if self.ids else 0)
        clients = [_Client(self, rng.random() * plan.interval) for _ in self.ids]
        for n, client in zip(self.ids, clients, strict=True):
            self.loop.call_at(plan.start + plan.ramp * n / max(1, plan.clients), client.connect)
        self.loop.call_at((plan.measure + plan.end) / 2, self._note_open)
        self.loop.call_at(plan.end, self.loop.stop)
        self.loop.run_forever()
        self.finished = True
        waits = [client.finish(plan.end) for client in clients]
        pending = asyncio.all_tasks(self.loop)  # connects still trying at the end
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()
        return Outcome(self.latencies, waits, self.errors, self.open_mid)

    def _note_open(self) -> None:
        self.open_mid = self.open


def _process(port: int, plan: Plan, ids: Sequence[int], out: Connection) -> None:
    out.send(_Generator(port, plan, ids).run())
    out.close()


def start_idle_clients(port: int, plan: Plan) -> Callable[[], Outcome]:
    """Start `plan.clients` clients against 127.0.0.1:`port`; call the result to collect them.

    The collector waits until `plan.end` (and at most 60 s more) for the merged outcome.
    """
    context = multiprocessing.get_context("fork")
    shares = max(1, math.ceil(plan.clients / PER_PROCESS))
    running = []
    for share in range(shares):
        ids = list(range(share, plan.clients, shares))
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_process, args=(port, plan, ids, send), daemon=True)
        process.start()
        send.close()
        running.append((process, receive))

    def collect() -> Outcome:
        parts = []
        for process, receive in running:
            if not receive.poll(max(0.0, plan.end - time.monotonic()) + 60):
                process.kill()
                raise RuntimeError("a client process did not report within 60 s of the end")
            parts.append(receive.recv())
            process.join(10)
        return Outcome.merge(parts)

    return collect
