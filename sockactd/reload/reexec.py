"""Standard reload, first half: check the new code, then re-execute the master in place.

Rule 1: nothing is committed before a separate process (`sockactd --check`
        with the same arguments) has loaded the new configuration and imported
        the application: a broken new image never replaces a working master.
Rule 2: by default the old workers keep serving across the execve (they stay
        children of the same PID); the new image adopts them and finishes the
        reload with AllWorkersReload. With `drain-first` (uWSGI's behaviour)
        the old workers are drained before the execve instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sockactd.pool import Worker, WorkerPool
from sockactd.reload.base import Outcome, ReloadHost

__all__ = ["ReexecReload"]


@dataclass
class ReexecReload:
    drain_first: bool = False
    outcome: Outcome = Outcome.RUNNING
    reason: str = ""
    _stage: str = "checking new code"
    _host: ReloadHost | None = None
    _draining: list[Worker] = field(default_factory=list)

    def begin(self, pool: WorkerPool, host: ReloadHost) -> None:
        self._host = host
        host.start_preflight()

    def on_preflight(self, pool: WorkerPool, ok: bool, details: str) -> None:
        assert self._host is not None
        if not ok:
            self.outcome = Outcome.ABORTED
            self.reason = "new configuration or application failed the check: " + details.strip()
            return
        if not self.drain_first:
            self._stage = "re-executing"
            self._host.exec_in_place()  # returns only if execve failed
            self.outcome, self.reason = Outcome.ABORTED, "execve of the new image failed"
            return
        self._stage = "draining old workers"
        self._draining = list(pool)
        for worker in self._draining:
            pool.retire(worker, self._host.worker_reload_mercy)
        self._exec_when_drained(pool)

    def on_exit(self, pool: WorkerPool, worker: Worker) -> None:
        if self._draining:
            self._exec_when_drained(pool)

    def on_ready(self, pool: WorkerPool, worker: Worker) -> None:
        pass

    def on_failed(self, pool: WorkerPool, worker: Worker, reason: str) -> None:
        pass

    def pauses_respawn(self) -> bool:
        return bool(self._draining)

    def progress(self, pool: WorkerPool) -> str:
        return f"standard reload: {self._stage}"

    def _exec_when_drained(self, pool: WorkerPool) -> None:
        assert self._host is not None
        if len(pool) == 0:
            self._stage = "re-executing"
            self._host.exec_in_place()
            self.outcome, self.reason = Outcome.ABORTED, "execve of the new image failed"
