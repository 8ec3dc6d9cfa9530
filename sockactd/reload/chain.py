"""Chain reload: replace workers one at a time, replacement first.

Rule 1: at every moment at least the configured number of workers accept
        connections: a step spawns the new worker first, and only when it has
        written READY on its status pipe is one old worker told to drain.
Rule 2: a step whose new worker fails (import error, exit, ready-timeout)
        stops the chain: the remaining old workers keep serving, workers
        already replaced keep serving (they are healthy), the outcome is
        ABORTED and the reason names the failed worker.
An old worker that dies during the chain is dropped from the list; the master
respawns it (into the new generation), so the chain never waits on a corpse.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sockactd.pool import Worker, WorkerPool
from sockactd.reload.base import Outcome, ReloadHost

__all__ = ["ChainReload"]


@dataclass
class ChainReload:
    outcome: Outcome = Outcome.RUNNING
    reason: str = ""
    _todo: deque[Worker] = field(default_factory=deque)
    _step: Worker | None = None
    _total: int = 0
    _mercy: float = 60.0

    def begin(self, pool: WorkerPool, host: ReloadHost) -> None:
        self._mercy = host.worker_reload_mercy
        self._todo.extend(pool.active())
        self._total = len(self._todo)
        pool.new_generation()
        self._next_step(pool)

    def on_ready(self, pool: WorkerPool, worker: Worker) -> None:
        if worker is not self._step:
            return
        self._step = None
        if self._todo:
            pool.retire(self._todo.popleft(), self._mercy)
        self._next_step(pool)

    def on_failed(self, pool: WorkerPool, worker: Worker, reason: str) -> None:
        if worker is not self._step:
            return
        self._step = None
        pool.discard()
        self.outcome, self.reason = Outcome.ABORTED, f"new worker {worker.pid} {reason}"

    def on_exit(self, pool: WorkerPool, worker: Worker) -> None:
        if worker in self._todo:
            self._todo.remove(worker)

    def on_preflight(self, pool: WorkerPool, ok: bool, details: str) -> None:
        pass

    def pauses_respawn(self) -> bool:
        return False

    def progress(self, pool: WorkerPool) -> str:
        done = self._total - len(self._todo)
        return f"chain reload: {done}/{self._total} workers on generation {pool.spawn_generation}"

    def _next_step(self, pool: WorkerPool) -> None:
        if not self._todo:
            pool.commit()
            self.outcome = Outcome.DONE
            return
        self._step = pool.spawn()
