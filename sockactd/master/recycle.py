"""Recycling workers before they do harm: requests served, age, memory.

Rule 1: `max-requests` and `max-worker-lifetime` recycle replacement first: the
        master starts the replacement and retires the old worker only when the
        replacement reported ready (master.py, `Worker.replacing`); the old one
        keeps serving meanwhile. Worker number K gets K times the matching
        `-delta` on top (uWSGI's max-requests-delta, max-worker-lifetime-delta),
        so workers started together do not all leave together.
Rule 2: `reload-on-rss` is judged by the worker itself after every request
        (worker/memory.py): past the limit it stops accepting at once -- a worker
        over its memory limit must not take more work -- finishes what it has,
        and says why in its DRAINING frame. Here that frame retires it, so its
        replacement is forked in the same loop turn (health.py).
Rule 3: `evil-reload-on-rss` is the master's hard limit: RSS read from /proc
        once a second, SIGKILL at once, even mid-request.
Each recycle is one log line naming the worker, its requests, age or RSS, and
the limit; each sets `Worker.exit_reason` for the metrics. Replacement-first
recycling waits while a reload runs (the reload replaces everyone anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sockactd.log import get_logger
from sockactd.master import procinfo
from sockactd.pool import ExitReason, Worker, WorkerPool, WorkerState

if TYPE_CHECKING:
    from sockactd.config.model import Config

__all__ = ["MEMORY_STOP", "Recycler"]

log = get_logger(__name__)

MEMORY_STOP = "reload-on-rss"  # how a worker's DRAINING frame starts when it stopped for memory
RSS_EVERY = 1.0  # seconds between the master's RSS readings (evil-reload-on-rss)
MIB = 1024 * 1024


class Recycler:
    def __init__(
        self,
        config: Callable[[], Config],
        pool: WorkerPool,
        reloading: Callable[[], bool],
        rss: Callable[[int], int | None] = procinfo.rss,
    ) -> None:
        self._config = config  # the master's: a reload may change it
        self.pool = pool
        self._reloading = reloading
        self._rss = rss
        self._next_rss = 0.0

    @property
    def config(self) -> Config:
        return self._config()

    def enabled(self) -> bool:
        config = self.config
        return bool(config.max_requests or config.max_worker_lifetime or config.evil_reload_on_rss)

    # --- limits per worker --------------------------------------------------------
    def request_limit(self, worker: Worker) -> int:
        """Requests `worker` may serve (0: no limit)."""
        limit = self.config.max_requests
        return limit + worker.number * self.config.max_requests_delta if limit else 0

    def lifetime(self, worker: Worker) -> float:
        """Seconds `worker` may live (0: no limit)."""
        limit = self.config.max_worker_lifetime
        return limit + worker.number * self.config.max_worker_lifetime_delta if limit else 0.0

    # --- the master's checks --------------------------------------------------------
    def check(self, now: float) -> None:
        """Called on every loop turn: recycle whoever passed a limit."""
        if not self.enabled():
            return
        if not self._reloading():
            for worker in self.pool.serving():
                if not worker.recycling:
                    self._check_one(worker, now)
        if self.config.evil_reload_on_rss and now >= self._next_rss:
            self._next_rss = now + RSS_EVERY
            self._check_memory()

    def _check_one(self, worker: Worker, now: float) -> None:
        served = worker.board.read()[0]
        limit = self.request_limit(worker)
        age, lifetime = now - worker.started, self.lifetime(worker)
        if limit and served >= limit:
            log.info("recycling worker %d: served %d requests (max-requests %d)",
                     worker.pid, served, limit)  # fmt: skip
            self._replace(worker, ExitReason.MAX_REQUESTS)
        elif lifetime and age >= lifetime:
            log.info("recycling worker %d: %.0f s old (max-worker-lifetime %g s)",
                     worker.pid, age, lifetime)  # fmt: skip
            self._replace(worker, ExitReason.LIFETIME)

    def _replace(self, worker: Worker, reason: ExitReason) -> None:
        worker.recycling = True  # first: the replacement takes over its number
        worker.exit_reason = reason
        self.pool.spawn().replacing = worker

    def _check_memory(self) -> None:
        limit = self.config.evil_reload_on_rss * MIB
        for worker in self.pool:
            if worker.state is WorkerState.GONE or worker.exit_reason is ExitReason.MEMORY_KILL:
                continue
            rss = self._rss(worker.pid)
            if rss is not None and rss > limit:
                log.error("evil-reload-on-rss: killing worker %d: RSS %.1f MiB over the %d MiB "
                          "limit", worker.pid, rss / MIB, limit // MIB)  # fmt: skip
                worker.exit_reason = ExitReason.MEMORY_KILL
                self.pool.kill(worker)
                if worker.state is WorkerState.SERVING:
                    worker.state = WorkerState.DRAINING  # its exit is expected, not a crash

    # --- what workers say -------------------------------------------------------------
    def on_draining(self, worker: Worker, why: str) -> None:
        """A worker stopped accepting (its DRAINING frame says `why`)."""
        if why.startswith(MEMORY_STOP) and worker.state is WorkerState.SERVING:
            worker.exit_reason = ExitReason.MEMORY
            self.pool.retire(worker, self.config.worker_reload_mercy)
