"""Liveness of idle workers: the heartbeat each worker's loop writes on its board.

Rule 1: a worker's loop writes the time on its board (Board.beat) at every
        sweep -- at least once a second, with or without connections. A
        serving worker with no request in progress whose last sign of life
        (that beat, or its READY) is older than LIVENESS_TIMEOUT does not
        answer: it was stopped (SIGSTOP), or its loop is stuck. A busy worker
        is harakiri's business, not this module's.
Rule 2: replacement first. A new worker is started at once; only when it has
        reported ready is the silent one killed, with SIGKILL (a stopped
        process never runs a SIGTERM handler). Its parked connections are lost
        either way: a stopped worker would never answer them.
Rule 3: one replacement per silent worker at a time (its `recycling` flag); if
        the replacement fails to boot, a later check starts another.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from sockactd.log import get_logger
from sockactd.pool import ExitReason, Worker, WorkerPool, WorkerState

__all__ = ["LIVENESS_TIMEOUT", "replace_silent", "retire_replaced", "silent_workers"]

log = get_logger(__name__)

LIVENESS_TIMEOUT: Final = 10.0  # seconds without a heartbeat from an idle worker


def silent_workers(workers: Iterable[Worker], now: float, timeout: float) -> list[Worker]:
    """Serving, idle workers not yet being replaced whose last sign of life is too old."""
    found = []
    for worker in workers:
        if worker.state is not WorkerState.SERVING or worker.recycling:
            continue
        if worker.board.read()[2]:  # busy: harakiri's business
            continue
        last = max(worker.board.last_beat(), worker.ready_at or 0.0)
        if last and now - last > timeout:
            found.append(worker)
    return found


def replace_silent(pool: WorkerPool, now: float, timeout: float = LIVENESS_TIMEOUT) -> None:
    """Start a replacement for every silent worker (Rule 2); the old one goes when it is ready."""
    for worker in silent_workers(pool, now, timeout):
        log.warning(
            "worker %d (generation %d) has not answered its liveness check for %.0fs "
            "(stopped, or its loop is stuck); replacing it",
            worker.pid, worker.generation,
            now - max(worker.board.last_beat(), worker.ready_at or 0.0),
        )  # fmt: skip
        worker.silent = True
        worker.recycling = True
        pool.spawn().replacing = worker


def retire_replaced(pool: WorkerPool, old: Worker, mercy: float) -> None:
    """The replacement of `old` is ready: drain `old`, or kill it when it is silent."""
    if old.silent:
        log.warning("killing silent worker %d: its replacement is ready", old.pid)
        pool.kill(old)
        old.state = WorkerState.DRAINING  # its exit is expected, not a crash
        old.exit_reason = ExitReason.LIVENESS
    else:
        pool.retire(old, mercy)
