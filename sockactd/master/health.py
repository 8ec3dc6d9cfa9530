"""Keeping the configured number of healthy workers: the master's periodic checks.

Rule 1: a missing worker is replaced; respawn.py says when: workers that
        die before they report ready back off (broken code), a worker that
        was serving is replaced at once (a crashing request), both bounded.
Rule 2: every deadline is enforced here, never by a sleep: a worker that
        does not report ready in `ready-timeout`, a retired worker past its
        mercy, a request past `harakiri`, a worker still there when the server's
        stop runs out of time (the master keeps that deadline) -- each gets SIGKILL.
        The line that says so says what the worker was doing, as its board tells:
        in requests, idle with its loop running, idle with its loop silent, or
        still starting.
Recycling (max-requests, lifetime, memory) is recycle.py's.
While a reload runs, respawning pauses if the reload itself brings the new
generation up (`reload_pauses_respawn`), and no surplus worker is retired.

It is handed the pool, the phase, a clock, the configuration (a getter: a
reload installs a new one) and two questions about the reload queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sockactd.log import get_logger
from sockactd.master.liveness import LIVENESS_TIMEOUT
from sockactd.master.respawn import SERVING_RESPAWNS_PER_SECOND, RespawnPolicy
from sockactd.pool import ExitReason, Worker, WorkerPool, WorkerState

if TYPE_CHECKING:
    from sockactd.config.model import Config
    from sockactd.master.phase import PhaseTracker

__all__ = ["Health"]

log = get_logger(__name__)


class Health:
    def __init__(
        self,
        pool: WorkerPool,
        phase: PhaseTracker,
        clock: Callable[[], float],
        settings: Callable[[], Config],
        reload_running: Callable[[], bool],
        reload_pauses_respawn: Callable[[], bool],
    ) -> None:
        self.pool = pool
        self.phase = phase
        self.clock = clock
        self.settings = settings
        self.reload_running = reload_running
        self.reload_pauses_respawn = reload_pauses_respawn
        self.respawn = RespawnPolicy()
        self._capped = False

    @property
    def next_spawn(self) -> float:
        return self.respawn.next_spawn

    def count_boot_failure(self, worker: Worker) -> None:
        self.respawn.boot_failed(self.clock())

    def count_serving_crash(self, worker: Worker) -> None:
        capped = self.respawn.serving_died(self.clock(), self.pool.size)
        if capped and not self._capped:
            log.warning(
                "serving workers die faster than %d a second each; replacements are paced",
                SERVING_RESPAWNS_PER_SECOND,
            )
        self._capped = capped

    def deficit(self) -> int:
        """How many workers are missing from the configured number (never negative)."""
        if not self.phase.wants_workers() or self.reload_pauses_respawn():
            return 0
        active = [w for w in self.pool.active() if not w.recycling]
        return max(0, self.pool.size - len(active))

    def keep_capacity(self, now: float) -> None:
        config, pool = self.settings(), self.pool
        deficit = self.deficit()
        if deficit > 0 and now >= self.respawn.next_spawn:
            for _ in range(deficit):
                pool.spawn()
        if self.phase.is_serving() and not self.reload_running():
            surplus = [w for w in pool.active() if not w.recycling and w.replacing is None]
            for worker in surplus[pool.size :]:
                log.info("retiring worker %d: %d workers configured", worker.pid, pool.size)
                worker.exit_reason = ExitReason.SCALE_DOWN
                pool.retire(worker, config.worker_reload_mercy)

    def check_deadlines(self, now: float) -> None:
        config, pool = self.settings(), self.pool
        for worker in pool:
            if worker.ready_deadline is not None and now >= worker.ready_deadline:
                worker.boot_error = (
                    f"did not report ready within {config.ready_timeout:g}s (ready-timeout)"
                )
                worker.ready_deadline = None
                pool.kill(worker)
            elif worker.kill_deadline is not None and now >= worker.kill_deadline:
                log.warning("%s; killing it", _past_its_mercy(worker, now))
                worker.kill_deadline = None
                pool.kill(worker)

    def kill_at_stop(self, now: float, limit: str) -> None:
        """The server's stop ran out of time (`limit` says which): SIGKILL every worker still
        there, each with one line naming it, what its board shows, and the signal."""
        for worker in self.pool:
            _, doing = _doing(worker, now)
            log.warning("worker %d (generation %d) did not exit within %s, %s; killing it "
                        "(SIGKILL)", worker.pid, worker.generation, limit, doing)  # fmt: skip
            self.pool.kill(worker)

    def check_boards(self, now: float) -> None:
        config, pool = self.settings(), self.pool
        if not config.harakiri:
            return
        for worker in pool:
            _, started, busy = worker.board.read()
            if busy and started and now - started > config.harakiri:
                log.error(
                    "harakiri: worker %d has run %s for %.1fs (limit %gs); killing it",
                    worker.pid, worker.board.described() or "one request", now - started,
                    config.harakiri,
                )  # fmt: skip
                pool.kill(worker)
                worker.state = WorkerState.DRAINING  # its exit is expected, not a crash
                worker.exit_reason = ExitReason.HARAKIRI

    def scale(self, delta: int) -> None:
        pool = self.pool
        pool.size = max(1, pool.size + delta)
        log.info("workers: %d", pool.size)


def _past_its_mercy(worker: Worker, now: float) -> str:
    """What a retired worker still there at its kill deadline is doing, from its board."""
    busy, doing = _doing(worker, now)
    if busy:
        return f"worker {worker.pid} still busy after its mercy: {doing}"
    return f"worker {worker.pid} did not exit within its mercy, {doing}"


def _doing(worker: Worker, now: float) -> tuple[bool, str]:
    """Whether `worker` is in a request, and what it does, as its board tells."""
    _, started, busy = worker.board.read()
    if busy:
        plural = "request" if busy == 1 else "requests"
        what = worker.board.described()  # only with harakiri
        oldest = f"{busy} {plural} in progress, the oldest for {now - started:.1f}s"
        return True, oldest + (f" (last started: {what})" if what else "")
    last = max(worker.board.last_beat(), worker.ready_at or 0.0)
    if not last:
        said = "it has not reported ready (still starting, or hung in its start)"
    elif now - last > LIVENESS_TIMEOUT:
        said = f"its loop has not run for {now - last:.0f}s (stopped, or stuck)"
    else:
        said = f"its loop still runs (last seen {now - last:.1f}s ago)"
    return False, f"in no request: {said}"
