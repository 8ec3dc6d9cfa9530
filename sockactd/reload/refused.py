"""A reload that must not start: it ends ABORTED the moment it begins.

Used when the configuration, loaded again at the start of a reload
(master/reconfig.py), does not load or changed a setting this mode cannot
apply. Going through the normal reload path keeps one way of reporting:
RELOADING=1 then READY=1 with the reason, every waiting `sockactctl reload
--wait` answered, `last_reload` in status. No worker is touched.
"""

from __future__ import annotations

from dataclasses import dataclass

from sockactd.pool import Worker, WorkerPool
from sockactd.reload.base import Outcome, ReloadHost

__all__ = ["RefusedReload"]


@dataclass
class RefusedReload:
    reason: str
    outcome: Outcome = Outcome.RUNNING

    def begin(self, pool: WorkerPool, host: ReloadHost) -> None:
        self.outcome = Outcome.ABORTED

    def on_ready(self, pool: WorkerPool, worker: Worker) -> None:
        pass

    def on_failed(self, pool: WorkerPool, worker: Worker, reason: str) -> None:
        pass

    def on_exit(self, pool: WorkerPool, worker: Worker) -> None:
        pass

    def on_preflight(self, pool: WorkerPool, ok: bool, details: str) -> None:
        pass

    def pauses_respawn(self) -> bool:
        return False

    def progress(self, pool: WorkerPool) -> str:
        return f"reload refused: {self.reason}"
