"""Reload requests: queue them, run one at a time, report every outcome.

Rule 1: reloads never run concurrently. A request that arrives while one
        runs is queued; queued requests of the same mode are merged, and every
        caller waiting (`sockactctl reload --wait`) learns the outcome of the
        reload that covered its request.
Rule 2: systemd hears RELOADING=1 (with MONOTONIC_USEC) when a reload starts
        and READY=1 when it ends, success or failure -- otherwise it would hang
        in "reloading".
Rule 3: a reload is done only when every retired worker confirmed it stopped
        accepting (its D frame) or has exited: from then on every new connection
        reaches the new generation. No timer stands in for that: a retired worker
        that never confirms is killed at worker-reload-mercy (health.py), and the
        reload is done once it has been reaped.

This module also is the `ReloadHost` the strategies use: the standard reload's
pre-flight process (`sockactd --check` with our arguments, watched through a
pidfd, never waited for) and the execve in place (the `reexec` callback). It
never forks workers itself: strategies ask the pool.

What it is handed instead of the master: the pool, the phase, the notifier, the
tally, the kernel (its clock), the configuration (a getter: a reload installs a
new one), the `Reconfigure` that loads it again, the loop (for the pre-flight's
pidfd) and callbacks for what it causes or asks (the STATUS= text, the execve,
the control socket's path for messages).

Why ~360 lines: the queue and the pre-flight share one state (which reload runs,
what waits behind it, the pre-flight's pidfd and deadline); the cut that would bring
it under ~300 is the pre-flight (~95 lines) into a module of its own, with that state
passed across. Left for when the pre-flight grows.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Protocol

from sockactd import log as sockactd_log
from sockactd.app import started_environ
from sockactd.log import get_logger
from sockactd.master.phase import ReloadFinished, ReloadStarted
from sockactd.master.reconfig import Reconfigure
from sockactd.modes import ReloadMode
from sockactd.osapi import describe_status
from sockactd.pool import Worker, WorkerPool
from sockactd.reload import registry
from sockactd.reload.base import Outcome, ReloadStrategy

if TYPE_CHECKING:
    from sockactd.config.model import Config
    from sockactd.master.loop import Loop, Watch
    from sockactd.master.phase import PhaseTracker
    from sockactd.master.reconfig import Reconfigure
    from sockactd.master.tally import Tally
    from sockactd.osapi import Kernel

__all__ = ["Announcer", "PendingReload", "ReloadResult", "Reloads", "Verdict", "Waiter"]

log = get_logger(__name__)


class Verdict(enum.Enum):
    """How a reload request ended."""

    DONE = "done"  # the new generation serves everything
    ABORTED = "aborted"  # it ran and failed; the old generation keeps serving
    REFUSED = "refused"  # never started (the server stops; workers/chain with a preloaded app)
    DROPPED = "dropped"  # queued or running when the server began to stop


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload request came to, for whoever waits for it (control/server.py replies)."""

    mode: ReloadMode
    verdict: Verdict
    message: str
    generation: int  # the generation serving when it ended

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.DONE


Waiter = Callable[[ReloadResult], object]  # told once, when the request it waits for ends


class Announcer(Protocol):
    """What a reload tells systemd (systemd/notify.py's Notifier)."""

    def reloading(self, status: str) -> None: ...
    def ready(self, status: str) -> None: ...
    def status(self, text: str) -> None: ...


@dataclass
class PendingReload:
    mode: ReloadMode
    waiters: list[Waiter] = field(default_factory=list)


@dataclass
class _Preflight:
    pid: int
    pidfd: int
    output: IO[bytes]  # its stdout and stderr
    watch: Watch
    deadline: float  # ready-timeout: killed when it has not finished by then
    timed_out: bool = False


class Reloads:
    def __init__(
        self,
        pool: WorkerPool,
        phase: PhaseTracker,
        notifier: Announcer,
        tally: Tally,
        kernel: Kernel,
        settings: Callable[[], Config],
        reconfigure: Reconfigure,
        loop: Loop,
        status_text: Callable[[], str],
        reexec: Callable[[list[ReloadMode]], None],
        control_path: Callable[[], str],
        on_preflight_failed: Callable[[str], None] = lambda output: None,
    ) -> None:
        self.pool = pool
        self.phase = phase
        self.notifier = notifier
        self.tally = tally
        self.kernel = kernel
        self.settings = settings
        self.reconfigure = reconfigure
        self.loop = loop
        self.status_text = status_text
        self.reexec = reexec  # execve with the queued modes; returns only if it failed
        self.control_path = control_path
        self.on_preflight_failed = on_preflight_failed  # its output, traceback and all
        config = settings()
        self.worker_reload_mercy = config.worker_reload_mercy
        self.strategy: ReloadStrategy | None = None
        self.current: PendingReload | None = None
        self.queue: deque[PendingReload] = deque()
        self.last: ReloadResult | None = None  # the last reload that ran
        self._preflight: _Preflight | None = None

    # --- asking -------------------------------------------------------------
    def request(self, mode: ReloadMode | None, waiter: Waiter | None = None) -> ReloadResult | None:
        """Queue a reload (merged with a queued one of the same mode) and start it if idle.

        `mode` None: the configured reload-mode (filled in here only). Returns the refusal
        when it cannot be done (`waiter` is told it too), None when queued: then `waiter`
        learns the result of the reload that covers this request.
        """
        config = self.settings()
        mode = mode or config.reload_mode
        refusal = self.refusal(mode)
        if refusal:
            log.error("%s reload refused: %s", mode, refusal)
            refused = ReloadResult(mode, Verdict.REFUSED, refusal, self.pool.generation)
            if waiter is not None:
                waiter(refused)
            return refused
        for pending in self.queue:
            if pending.mode == mode:
                if waiter is not None:
                    pending.waiters.append(waiter)
                break
        else:
            self.queue.append(PendingReload(mode, [waiter] if waiter else []))
        self.start_next()
        return None

    def refusal(self, mode: ReloadMode) -> str:
        """Why a `mode` reload cannot be done now, or "" when it can."""
        if not self.phase.accepts_reloads():
            return "the server is stopping"
        config = self.settings()
        if mode.needs_lazy_apps and not config.lazy_apps:
            return (
                f"a {mode} reload cannot load new code: the application is preloaded in "
                "the master (lazy-apps is off). Use a standard reload, or set lazy-apps."
            )
        return ""

    # --- running ------------------------------------------------------------
    def start_next(self) -> None:
        if self.strategy is not None or not self.queue or not self.phase.is_serving():
            return
        self.current = self.queue.popleft()
        mode = self.current.mode
        config, problem = self.reconfigure.begin(self.settings(), mode, self.control_path())
        strategy = registry.refused(problem) if problem else registry.strategy_for(mode, config)
        self._begin(strategy, mode)

    def resume_standard(self, waiters: Sequence[Waiter], queued: Sequence[ReloadMode]) -> None:
        """Second half of a standard reload, in the new image: renew the adopted workers."""
        self.queue.extend(PendingReload(mode) for mode in queued)
        self.current = PendingReload(ReloadMode.STANDARD, list(waiters))
        self._begin(registry.standard_second_half(), ReloadMode.STANDARD)

    def _begin(self, strategy: ReloadStrategy, mode: ReloadMode) -> None:
        self.strategy = strategy
        self.tally.reload_started(self.kernel.monotonic())
        self.phase.move(ReloadStarted(mode))
        log.info("%s reload started", mode)
        self.notifier.reloading(strategy.progress(self.pool))
        strategy.begin(self.pool, self)
        self.settle()

    def settle(self) -> None:
        """Finish the reload if its strategy reached an outcome (and retired workers agree)."""
        strategy = self.strategy
        if strategy is None or strategy.outcome is Outcome.RUNNING:
            return
        pool = self.pool
        ok = strategy.outcome is Outcome.DONE
        if ok and pool.still_accepting():
            return  # Rule 3
        current = self.current
        assert current is not None  # set together with the strategy
        mode = current.mode
        if ok:
            message = f"{mode} reload done: generation {pool.generation} serves"
        else:
            message = (
                f"{mode} reload aborted: {strategy.reason}; "
                f"generation {pool.generation} keeps serving"
            )
        (log.info if ok else log.error)("%s", message)
        self.reconfigure.finish(ok)
        sockactd_log.set_generation(pool.generation)
        waiters = current.waiters
        self.strategy, self.current = None, None
        result = ReloadResult(mode, Verdict.DONE if ok else Verdict.ABORTED, message,
                              pool.generation)  # fmt: skip
        self.last = result
        self.tally.reload_finished(mode, ok, self.kernel.monotonic(), time.time())
        self.phase.move(ReloadFinished(ok))
        self.notifier.ready(self.status_text() if ok else message)
        for waiter in waiters:
            waiter(result)
        self.start_next()

    def fail_all(self, why: str) -> None:
        """Answer everyone waiting or queued: nothing more will run (the server stops)."""
        pending = list(self.queue)
        if self.current is not None:
            pending.append(self.current)
        self.queue.clear()
        self.current, self.strategy = None, None
        if self._preflight is not None:
            self.kernel.kill(self._preflight.pid, signal.SIGKILL)
        generation = self.pool.generation
        for item in pending:
            message = f"{item.mode} reload not done: {why}"
            for waiter in item.waiters:
                waiter(ReloadResult(item.mode, Verdict.DROPPED, message, generation))

    def progress(self) -> str | None:
        strategy, current = self.strategy, self.current
        if strategy is None or current is None:
            return None
        waiting = len(self.pool.still_accepting()) if strategy.outcome is Outcome.DONE else 0
        if waiting:  # Rule 3
            return f"{current.mode} reload: waiting for {waiting} retired workers to stop accepting"
        return strategy.progress(self.pool)

    def running_mode(self) -> ReloadMode | None:
        """The mode of the reload that runs now (None: none runs)."""
        return self.current.mode if self.current else None

    # --- worker events, passed on to the running strategy -------------------------
    def on_ready(self, worker: Worker) -> None:
        if self.strategy is not None:
            self.strategy.on_ready(self.pool, worker)
        self.settle()

    def on_failed(self, worker: Worker, reason: str) -> None:
        if self.strategy is not None and worker.generation == self.pool.pending:
            self.strategy.on_failed(self.pool, worker, reason)
        self.settle()

    def on_exit(self, worker: Worker) -> None:
        if self.strategy is not None:
            self.strategy.on_exit(self.pool, worker)
        self.settle()

    def pauses_respawn(self) -> bool:
        return self.strategy is not None and self.strategy.pauses_respawn()

    # --- ReloadHost: what a standard reload needs ------------------------------------
    def start_preflight(self) -> None:
        import tempfile

        output = tempfile.TemporaryFile()  # noqa: SIM115 -- closed when the process exits
        env = {
            k: v
            for k, v in started_environ().items()
            if not k.startswith(("LISTEN_", "NOTIFY_SOCKET", "WATCHDOG_"))
        }
        config = self.settings()
        argv = [sys.executable, "-m", "sockactd", "--check", *self.reconfigure.argv]
        pid = self.kernel.spawn(argv, env, self.reconfigure.start_dir, output.fileno())
        pidfd = self.kernel.pidfd_open(pid)
        assert pidfd is not None  # our child, not reaped yet: its pidfd opens even if it exited
        watch = self.loop.watch(pidfd, self._on_preflight_exit)
        deadline = self.kernel.monotonic() + config.ready_timeout
        self._preflight = _Preflight(pid, pidfd, output, watch, deadline)

    def next_deadline(self) -> float | None:
        """When the running pre-flight check must have finished (None: none runs)."""
        preflight = self._preflight
        return None if preflight is None or preflight.timed_out else preflight.deadline

    def check_deadline(self, now: float) -> None:
        """Kill a pre-flight check past ready-timeout; its exit then aborts the reload."""
        preflight = self._preflight
        if preflight is not None and not preflight.timed_out and now >= preflight.deadline:
            preflight.timed_out = True
            config = self.settings()
            log.error(
                "pre-flight check of the new code did not finish within %gs (ready-timeout); "
                "killing it",
                config.ready_timeout,
            )
            self.kernel.kill(preflight.pid, signal.SIGKILL)

    def _on_preflight_exit(self, events: int) -> None:
        preflight, self._preflight = self._preflight, None
        assert preflight is not None
        self.loop.cancel(preflight.watch)
        os.close(preflight.pidfd)
        status = self.kernel.reap(preflight.pid)  # exited: its pidfd is readable
        with preflight.output as output:
            output.seek(0)
            details = output.read().decode("utf-8", "replace")
        summary = _last_lines(details)
        ok = status == 0 and not preflight.timed_out
        if preflight.timed_out:
            config = self.settings()
            summary = (
                f"the check did not finish within {config.ready_timeout:g}s "
                f"(ready-timeout); its last output: {summary or 'none'}"
            )
        elif not ok:
            outcome = describe_status(-1 if status is None else status)
            log.error("pre-flight check of the new code failed (%s):\n%s", outcome, details)
            self.on_preflight_failed(details)
        if self.strategy is not None:
            self.strategy.on_preflight(self.pool, ok, summary)
        self.settle()

    def exec_in_place(self) -> None:
        """execve the master (same PID); the waiters travel along. Returns only on failure."""
        log.info("re-executing master %d in place", os.getpid())
        self.notifier.status("standard reload: re-executing the master")
        self.reexec([p.mode for p in self.queue])


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])
