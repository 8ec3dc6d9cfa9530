"""What the monitoring pages read from the master: a narrow, read-only view.

metrics.py and stats.py get a `Sources` -- the pool, the tally, the app's
listeners and two clocks -- never the master itself. The helpers here add up
what both need: requests of the workers alive (their boards) plus those of
workers gone (folded into the tally when they left).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sockactd.master.procinfo import listen_queue
from sockactd.master.tally import Tally
from sockactd.pool import Worker, WorkerPool, WorkerState
from sockactd.sockets import Listener
from sockactd.worker.board import Counts

__all__ = ["ListenerQueue", "Sources", "listener_queues", "present_workers", "request_counts"]


@dataclass(frozen=True)
class Sources:
    pool: WorkerPool
    tally: Tally
    listeners: Sequence[Listener]
    started_wall: float  # the master's start, time.time(); kept across standard reloads
    monotonic: Callable[[], float]
    wall: Callable[[], float]
    memory: Callable[[int], int | None]  # a pid's resident set size (procinfo.rss)


@dataclass(frozen=True, slots=True)
class ListenerQueue:
    address: str
    protocol: str
    waiting: int | None  # None where the kernel does not say
    limit: int | None


def present_workers(pool: WorkerPool) -> list[Worker]:
    """Workers not yet reaped, by number then age."""
    alive = [w for w in pool if w.state is not WorkerState.GONE]
    return sorted(alive, key=lambda w: (w.number, w.started))


def request_counts(sources: Sources) -> Counts:
    """Every request since the master started: gone workers' plus live boards'."""
    total = Counts()
    total.add(sources.tally.requests)
    for worker in present_workers(sources.pool):
        total.add(worker.board.counts())
    return total


def in_flight(pool: WorkerPool) -> int:
    return sum(worker.board.read()[2] for worker in present_workers(pool))


def listener_queues(listeners: Sequence[Listener]) -> list[ListenerQueue]:
    queues = []
    for listener in listeners:
        queue = listen_queue(listener.sock)
        waiting, limit = queue if queue is not None else (None, None)
        queues.append(ListenerQueue(listener.address, listener.protocol, waiting, limit))
    return queues
