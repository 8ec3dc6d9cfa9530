"""One interface for the reload strategies, and what a reload ends as.

A strategy reacts to one event and returns: it never sleeps, loops or waits.
The master feeds it worker readiness, boot failures and exits from its event
loop, and looks at `outcome` after each call. Strategies know the worker pool
and a small `ReloadHost` (the few master services a standard reload needs);
they never import master.py.
"""

from __future__ import annotations

import enum
from typing import Protocol

from sockactd.pool import Worker, WorkerPool, WorkerState

__all__ = ["Outcome", "ReloadHost", "ReloadStrategy"]


class Outcome(enum.Enum):
    RUNNING = "running"
    DONE = "done"  # the new generation serves everything
    ABORTED = "aborted"  # the old generation keeps serving; `reason` says why


class ReloadHost(Protocol):
    """What the master lends a strategy."""

    worker_reload_mercy: float

    def start_preflight(self) -> None: ...
    def exec_in_place(self) -> None: ...


class ReloadStrategy(Protocol):
    """Runs one reload (reload/registry.py says which strategy runs which mode)."""

    outcome: Outcome
    reason: str

    def begin(self, pool: WorkerPool, host: ReloadHost) -> None: ...
    def on_ready(self, pool: WorkerPool, worker: Worker) -> None: ...
    def on_failed(self, pool: WorkerPool, worker: Worker, reason: str) -> None: ...
    def on_exit(self, pool: WorkerPool, worker: Worker) -> None: ...
    def on_preflight(self, pool: WorkerPool, ok: bool, details: str) -> None: ...
    def pauses_respawn(self) -> bool:
        """True while this reload itself restores capacity, so the master must not respawn."""
        ...

    def progress(self, pool: WorkerPool) -> str: ...


def abort_new_generation(pool: WorkerPool, new: list[Worker], mercy: float) -> None:
    """Undo a half-started generation: kill what boots, drain what already serves."""
    for worker in new:
        if worker.state is WorkerState.BOOTING:
            pool.kill(worker)
        else:
            pool.retire(worker, mercy)
    pool.discard()
