"""Workers reload: start a whole new generation, then retire the old one.

Rule 1: no old worker is told to drain before EVERY new worker has reported
        ready, so capacity never drops while the application imports.
Rule 2: if any new worker fails to boot (import error, exit, ready-timeout),
        the new generation is taken down and the old one keeps serving.

The second half of a standard reload is this same strategy, run by the new
master image with the workers it adopted as the old generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sockactd.modes import ReloadMode
from sockactd.pool import Worker, WorkerPool, WorkerState
from sockactd.reload.base import Outcome, ReloadHost, abort_new_generation

__all__ = ["AllWorkersReload"]


@dataclass
class AllWorkersReload:
    outcome: Outcome = Outcome.RUNNING
    reason: str = ""
    mode: ReloadMode = ReloadMode.WORKERS  # what progress() names: STANDARD for its second half
    _old: list[Worker] = field(default_factory=list)
    _new: list[Worker] = field(default_factory=list)
    _mercy: float = 60.0

    def begin(self, pool: WorkerPool, host: ReloadHost) -> None:
        self._mercy = host.worker_reload_mercy
        self._old = pool.active()
        pool.new_generation()
        self._new = [pool.spawn() for _ in range(pool.size)]

    def on_ready(self, pool: WorkerPool, worker: Worker) -> None:
        if worker not in self._new or self.outcome is not Outcome.RUNNING:
            return
        if all(new.state is WorkerState.SERVING for new in self._new):
            for old in self._old:
                pool.retire(old, self._mercy)
            pool.commit()
            self.outcome = Outcome.DONE

    def on_failed(self, pool: WorkerPool, worker: Worker, reason: str) -> None:
        if worker not in self._new or self.outcome is not Outcome.RUNNING:
            return
        abort_new_generation(pool, [w for w in self._new if w is not worker], self._mercy)
        self.outcome, self.reason = Outcome.ABORTED, f"new worker {worker.pid} {reason}"

    def on_exit(self, pool: WorkerPool, worker: Worker) -> None:
        if worker in self._old:
            self._old.remove(worker)

    def on_preflight(self, pool: WorkerPool, ok: bool, details: str) -> None:
        pass

    def pauses_respawn(self) -> bool:
        return True

    def progress(self, pool: WorkerPool) -> str:
        ready = sum(1 for w in self._new if w.state is WorkerState.SERVING)
        return (
            f"{self.mode.value} reload: {ready}/{len(self._new)} workers ready "
            f"on generation {pool.spawn_generation}"
        )
