"""The master: one event loop that supervises workers and talks to systemd.

Theory of operation. Everything arrives as a readable fd in one selector --
the signal wakeup pipe, each worker's status pipe and pidfd, the control
socket, the trigger watcher, a standard reload's pre-flight process -- or as a
deadline in `_tick`. Each handler is short and never blocks. The phase table
(phase.py) decides which moves are legal; reload strategies (reload/) decide
which worker to start or retire next; the pool (pool.py) does it.

Invariants:
* READY=1 is sent only when every initial worker reported ready, and again
  at the end of every reload, success or failure (systemd waits for it).
* A worker that dies unexpectedly is replaced, with a back-off when workers
  keep dying young, so a crashing app does not fork-bomb the machine.
* At start-up, `boot-attempts` boot failures in a row end the master with the
  reason in STATUS=/ERRNO= and a non-zero exit: fail loudly, never loop.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from sockactd import log as sockactd_log
from sockactd.config.model import Config
from sockactd.control.protocol import Command, ControlRequest, Response
from sockactd.control.server import ControlServer, Replier
from sockactd.errors import ExitCode
from sockactd.master import handover
from sockactd.master.phase import (
    AllGone,
    AllReady,
    BootGaveUp,
    Phase,
    PhaseEvent,
    ReloadFinished,
    ReloadStarted,
    StopRequested,
    next_phase,
)
from sockactd.master.pool import Worker, WorkerPool, WorkerState
from sockactd.master.signals import SIGNAL_ACTIONS, Reload, Scale, SignalInbox, Stop
from sockactd.master.status import status_data, status_line
from sockactd.osapi import Kernel, describe_status
from sockactd.reload.all_workers import AllWorkersReload
from sockactd.reload.base import Outcome, ReloadStrategy
from sockactd.reload.chain import ChainReload
from sockactd.reload.reexec import ReexecReload
from sockactd.sockets import Listener
from sockactd.systemd.notify import Notifier, watchdog_interval
from sockactd.worker.app import WSGIApp
from sockactd.worker.board import Board
from sockactd.worker.entry import WorkerSpec, run_worker

if TYPE_CHECKING:
    from sockactd.triggers.inotify import TriggerWatcher

__all__ = ["Master"]

log = logging.getLogger(__name__)

EXTEND_EVERY = 5.0  # seconds between EXTEND_TIMEOUT_USEC while reloading or stopping
EXTEND_BY = 20.0
FAST_STOP_GRACE = 2.0  # SIGINT to workers, then SIGKILL after this
YOUNG = 10.0  # a worker dying younger than this counts towards back-off
STEADY_TICK = 1.0
DRAIN_ACK_GRACE = 2.0  # longest wait for retired workers to confirm they stopped accepting


@dataclass
class PendingReload:
    mode: str
    waiters: list[Replier] = field(default_factory=list)


@dataclass
class Preflight:
    process: subprocess.Popen[bytes]
    pidfd: int
    output: IO[bytes]  # its stdout and stderr


class Master:
    def __init__(
        self,
        config: Config,
        listeners: Sequence[Listener],
        notifier: Notifier,
        app: WSGIApp | None,
        kernel: Kernel,
        argv: Sequence[str],
        resumed: handover.Handover | None = None,
        start_dir: str | None = None,
    ) -> None:
        self.config = config
        self.listeners = list(listeners)
        self.notifier = notifier
        self.app = app
        self.kernel = kernel
        self.argv = list(argv)
        self.start_dir = start_dir or os.getcwd()
        self.worker_reload_mercy = config.worker_reload_mercy
        self.phase = Phase.STARTING
        self.exit_code = ExitCode.OK
        self.started_wall = resumed.started_wall if resumed else time.time()
        self.selector = selectors.DefaultSelector()
        self.pool = WorkerPool(kernel, self._fork_worker, config.processes, config.ready_timeout)
        self.pool.on_added = self._watch_worker
        self.pool.on_removed = self._unwatch_worker
        self.strategy: ReloadStrategy | None = None
        self.current: PendingReload | None = None
        self.queue: deque[PendingReload] = deque()
        self.last_reload: tuple[bool, str, int] | None = None
        self.preflight: Preflight | None = None
        self._crashes = 0
        self._last_crash = 0.0
        self._next_spawn = 0.0
        self._boot_failures = 0
        self._logged_boot_error = ""
        self._stop_deadline: float | None = None
        self._next_extend = 0.0
        self._last_status = ""
        self._watchdog = watchdog_interval()
        self._next_watchdog = 0.0
        self.inbox = SignalInbox()
        self.selector.register(self.inbox.fileno(), selectors.EVENT_READ, self._on_signals)
        self.control = self._open_control(resumed)
        self.triggers = self._open_triggers()
        sockactd_log.set_generation(self.pool.generation)
        if resumed is not None:
            self._resume(resumed)

    # --- set-up -------------------------------------------------------------
    def _open_control(self, resumed: handover.Handover | None) -> ControlServer:
        from sockactd.control.paths import default_control_socket

        path = self.config.control_socket or default_control_socket(os.environ)
        inherited = resumed.control_fd if resumed else None
        server = ControlServer(path, self._on_control_request, inherited_fd=inherited)
        server.attach(self.selector, data=self._on_control_event)
        log.info("control socket at %s", path)
        return server

    def _open_triggers(self) -> TriggerWatcher | None:
        rules = [(path, "standard") for path in self.config.touch_reload]
        rules += [(path, "workers") for path in self.config.touch_workers_reload]
        rules += [(path, "chain") for path in self.config.touch_chain_reload]
        if not rules:
            return None
        from sockactd.triggers.inotify import TriggerWatcher

        watcher = TriggerWatcher(rules)
        self.selector.register(watcher.fileno(), selectors.EVENT_READ, self._on_triggers)
        return watcher

    def _resume(self, resumed: handover.Handover) -> None:
        """Second half of a standard reload, in the new image: adopt, then renew."""
        self.pool.generation = resumed.generation
        for worker in resumed.workers:
            self.pool.adopt(worker)
        waiters = [self.control.resume(fd) for fd in resumed.waiting_fds]
        for mode in resumed.queued:
            self.queue.append(PendingReload(mode))
        self.current = PendingReload("standard", waiters)
        self._move(ReloadStarted("standard"))
        strategy = AllWorkersReload(label="standard")
        self.strategy = strategy
        strategy.begin(self.pool, self)
        self._after_strategy()

    # --- the loop -----------------------------------------------------------
    def run(self) -> ExitCode:
        log.info(
            "sockactd master %d serving %s on %s",
            os.getpid(),
            self.config.app_target,
            ", ".join(f"{lst.address} ({lst.protocol})" for lst in self.listeners),
        )
        try:
            while self.phase is not Phase.EXITING:
                for key, events in self.selector.select(self._timeout()):
                    callback: Callable[[int, int], None] = key.data
                    callback(key.fd, events)
                self._tick(self.kernel.monotonic())
        finally:
            self._close()
        return self.exit_code

    def _timeout(self) -> float:
        now = self.kernel.monotonic()
        deadlines = [now + STEADY_TICK, self.control.next_deadline() or now + STEADY_TICK]
        if self.triggers is not None:
            deadlines.append(self.triggers.next_deadline() or now + STEADY_TICK)
        if self._watchdog:
            deadlines.append(self._next_watchdog)
        for worker in self.pool:
            deadlines += [d for d in (worker.ready_deadline, worker.kill_deadline) if d]
            if worker.accepting and worker.retired_at is not None:
                deadlines.append(worker.retired_at + DRAIN_ACK_GRACE)
        if self._stop_deadline:
            deadlines.append(self._stop_deadline)
        if self._deficit() > 0:
            deadlines.append(self._next_spawn)
        return max(0.0, min(deadlines) - now)

    def _tick(self, now: float) -> None:
        self.control.expire(now)
        self._after_strategy()
        if self.triggers is not None:
            for mode in self.triggers.due(now):
                log.info("trigger file changed: %s reload", mode)
                self.request_reload(mode, None)
        self._check_deadlines(now)
        self._check_boards(now)
        self._keep_capacity(now)
        self._ping(now)
        self._publish_status()

    # --- events from the selector -------------------------------------------
    def _on_signals(self, fd: int, events: int) -> None:
        for signum in self.inbox.drain():
            action = SIGNAL_ACTIONS.get(signum)
            log.debug("signal %s -> %s", signum.name, action)
            if isinstance(action, Stop):
                self.stop(graceful=action.graceful, why=f"{signum.name} received")
            elif isinstance(action, Reload):
                self.request_reload(action.mode, None)
            elif isinstance(action, Scale):
                self._scale(action.delta)
        self._reap_all()  # SIGCHLD, and a safety net if a pidfd event was missed

    def _on_control_event(self, fd: int, events: int) -> None:
        self.control.handle_event(fd, events)

    def _on_triggers(self, fd: int, events: int) -> None:
        if self.triggers is not None:
            self.triggers.on_readable(self.kernel.monotonic())

    def _on_status(self, worker: Worker) -> Callable[[int, int], None]:
        def handler(fd: int, events: int) -> None:
            self._read_status(worker)

        return handler

    def _on_exit(self, worker: Worker) -> Callable[[int, int], None]:
        def handler(fd: int, events: int) -> None:
            self._reap(worker)

        return handler

    def _read_status(self, worker: Worker) -> None:
        try:
            data = os.read(worker.status_fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._unregister(worker.status_fd)
            return
        from sockactd.worker.status import FrameKind

        for frame in worker.reader.feed(data):
            if frame.kind is FrameKind.READY:
                self._on_ready(worker)
            elif frame.kind is FrameKind.DRAINING:
                worker.accepting = False
                self._after_strategy()
            else:
                worker.boot_error = frame.text

    # --- workers ------------------------------------------------------------
    def _fork_worker(self, generation: int) -> tuple[int, int, Board]:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        board = Board.create()
        pid = self.kernel.fork()
        if pid == 0:
            os.close(read_fd)
            run_worker(
                WorkerSpec(
                    self.config,
                    self.listeners,
                    self.app,
                    generation,
                    write_fd,
                    board,
                    os.getppid(),
                    self.notifier.close_in_child,
                )
            )
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        return pid, read_fd, board

    def _watch_worker(self, worker: Worker) -> None:
        self.selector.register(worker.status_fd, selectors.EVENT_READ, self._on_status(worker))
        if worker.pidfd is not None:
            self.selector.register(worker.pidfd, selectors.EVENT_READ, self._on_exit(worker))

    def _unwatch_worker(self, worker: Worker) -> None:
        for fd in (worker.status_fd, worker.pidfd):
            if fd is not None:
                self._unregister(fd)

    def _unregister(self, fd: int) -> None:
        try:
            self.selector.unregister(fd)
        except (KeyError, ValueError):
            pass

    def _reap_all(self) -> None:
        for worker in self.pool:
            self._reap(worker)

    def _reap(self, worker: Worker) -> None:
        state = worker.state
        if state is not WorkerState.GONE:
            self._read_status(worker)  # a READY or a traceback may still sit in the pipe
            state = worker.state
        status = self.pool.reap(worker)
        if status is not None:
            self._on_worker_exit(worker, state, status)

    def _on_ready(self, worker: Worker) -> None:
        if worker.state is not WorkerState.BOOTING:
            return
        self.pool.mark_ready(worker)
        log.info(
            "worker %d (generation %d) ready in %.0f ms",
            worker.pid,
            worker.generation,
            (self.kernel.monotonic() - worker.started) * 1000,
        )
        if worker.replacing is not None:
            self.pool.retire(worker.replacing, self.worker_reload_mercy)
            worker.replacing = None
        if self.phase is Phase.STARTING and len(self.pool.serving()) >= self.pool.size:
            self._boot_failures = 0
            self._move(AllReady())
            self.notifier.ready(self._status_text())
        if self.strategy is not None:
            self.strategy.on_ready(self.pool, worker)
            self._after_strategy()

    def _on_worker_exit(self, worker: Worker, state: WorkerState, status: int) -> None:
        how = describe_status(status)
        if state is WorkerState.BOOTING:
            self._on_boot_failure(worker, how)
        elif state is WorkerState.SERVING:
            log.warning("worker %d (generation %d) died: %s", worker.pid, worker.generation, how)
            self._count_crash(worker)
            if worker.replacing is not None:  # a max-requests replacement that died
                worker.replacing.recycling = False
        else:
            log.info("worker %d (generation %d) retired: %s", worker.pid, worker.generation, how)
        if self.strategy is not None:
            self.strategy.on_exit(self.pool, worker)
        self._after_strategy()
        if self.phase is Phase.STOPPING and len(self.pool) == 0:
            self._move(AllGone())

    def _on_boot_failure(self, worker: Worker, how: str) -> None:
        reason = worker.boot_error.strip() or f"exited while booting ({how})"
        first_line = reason.splitlines()[-1] if reason else how
        if reason != self._logged_boot_error:  # the traceback once, not per attempt
            log.error(
                "worker %d (generation %d) failed to boot (%s):\n%s",
                worker.pid,
                worker.generation,
                how,
                reason,
            )
            self._logged_boot_error = reason
        else:
            log.error("worker %d failed to boot again: %s", worker.pid, first_line)
        self._count_crash(worker)
        if worker.replacing is not None:
            worker.replacing.recycling = False
        if self.phase is Phase.STARTING:
            self._boot_failures += 1
            if self._boot_failures >= self.config.boot_attempts:
                self._give_up(worker, first_line)
        elif self.strategy is not None and worker.generation == self.pool.pending:
            self.strategy.on_failed(self.pool, worker, f"failed to boot: {first_line}")
            self._after_strategy()

    def _give_up(self, worker: Worker, why: str) -> None:
        self.exit_code = (
            ExitCode.APP_IMPORT_FAILED if worker.boot_error else ExitCode.WORKER_BOOT_FAILED
        )
        message = f"workers failed to boot {self._boot_failures} times, giving up: {why}"
        log.critical("%s", message)
        self.notifier.fatal(message, 22 if worker.boot_error else 10)
        self._move(BootGaveUp())
        self._begin_stop(graceful=False)

    def _count_crash(self, worker: Worker) -> None:
        now = self.kernel.monotonic()
        if now - worker.started < YOUNG:
            self._crashes = self._crashes + 1 if now - self._last_crash < YOUNG else 1
            self._last_crash = now
            delay = 0.0 if self._crashes <= 1 else min(0.1 * 2 ** (self._crashes - 2), 5.0)
            self._next_spawn = max(self._next_spawn, now + delay)

    def _deficit(self) -> int:
        """How many workers are missing from the configured number (never negative)."""
        if self.phase not in (Phase.STARTING, Phase.SERVING, Phase.RELOADING):
            return 0
        if self.strategy is not None and self.strategy.pauses_respawn():
            return 0  # the reload itself is bringing the new generation up
        active = [w for w in self.pool.active() if not w.recycling]
        return max(0, self.pool.size - len(active))

    def _keep_capacity(self, now: float) -> None:
        deficit = self._deficit()
        if deficit > 0 and now >= self._next_spawn:
            for _ in range(deficit):
                self.pool.spawn()
        if self.phase is Phase.SERVING and self.strategy is None:
            surplus = [w for w in self.pool.active() if not w.recycling and w.replacing is None]
            for worker in surplus[self.pool.size :]:
                log.info("retiring worker %d: %d workers configured", worker.pid, self.pool.size)
                self.pool.retire(worker, self.worker_reload_mercy)

    def _scale(self, delta: int) -> None:
        self.pool.size = max(1, self.pool.size + delta)
        log.info("workers: %d", self.pool.size)

    def _check_deadlines(self, now: float) -> None:
        for worker in self.pool:
            if worker.ready_deadline is not None and now >= worker.ready_deadline:
                worker.boot_error = (
                    f"did not report ready within {self.config.ready_timeout:g}s (ready-timeout)"
                )
                worker.ready_deadline = None
                self.pool.kill(worker)
            elif worker.kill_deadline is not None and now >= worker.kill_deadline:
                log.warning("worker %d still busy after its mercy; killing it", worker.pid)
                worker.kill_deadline = None
                self.pool.kill(worker)
        if self._stop_deadline is not None and now >= self._stop_deadline:
            self._stop_deadline = None
            for worker in self.pool:
                log.warning("worker %d did not stop in time; killing it", worker.pid)
                self.pool.kill(worker)

    def _check_boards(self, now: float) -> None:
        harakiri, max_requests = self.config.harakiri, self.config.max_requests
        if not harakiri and not max_requests:
            return
        for worker in self.pool:
            served, started, busy = worker.board.read()
            if harakiri and busy and started and now - started > harakiri:
                log.error(
                    "harakiri: worker %d has run one request for %.1fs (limit %gs); killing it",
                    worker.pid,
                    now - started,
                    harakiri,
                )
                self.pool.kill(worker)
                worker.state = WorkerState.DRAINING
            elif (
                max_requests
                and served >= max_requests
                and self.strategy is None
                and worker.state is WorkerState.SERVING
                and not worker.recycling
            ):
                log.info("worker %d served %d requests: recycling it", worker.pid, served)
                worker.recycling = True
                self.pool.spawn().replacing = worker

    # --- reloads ------------------------------------------------------------
    def request_reload(self, mode: str | None, replier: Replier | None) -> None:
        """Queue a reload; merge it with a queued one of the same mode."""
        mode = mode or self.config.reload_mode
        refusal = self._refusal(mode)
        if refusal:
            log.error("%s reload refused: %s", mode, refusal)
            if replier is not None:
                replier.send(Response(False, refusal))
            return
        for pending in self.queue:
            if pending.mode == mode:
                if replier is not None:
                    pending.waiters.append(replier)
                break
        else:
            self.queue.append(PendingReload(mode, [replier] if replier else []))
        self._start_next_reload()

    def _refusal(self, mode: str) -> str:
        if self.phase in (Phase.STOPPING, Phase.EXITING):
            return "the server is stopping"
        if mode in ("workers", "chain") and not self.config.lazy_apps:
            return (
                f"a {mode} reload cannot load new code: the application is preloaded in "
                "the master (lazy-apps is off). Use a standard reload, or set lazy-apps."
            )
        return ""

    def _start_next_reload(self) -> None:
        if self.phase is not Phase.SERVING or self.strategy is not None or not self.queue:
            return
        self.current = self.queue.popleft()
        strategy: ReloadStrategy
        if self.current.mode == "standard":
            strategy = ReexecReload(drain_first=self.config.drain_first)
        elif self.current.mode == "workers":
            strategy = AllWorkersReload()
        else:
            strategy = ChainReload()
        self.strategy = strategy
        self._move(ReloadStarted(self.current.mode))
        log.info("%s reload started", self.current.mode)
        self.notifier.reloading(strategy.progress(self.pool))
        self._next_extend = self.kernel.monotonic() + EXTEND_EVERY
        strategy.begin(self.pool, self)
        self._after_strategy()

    def _after_strategy(self) -> None:
        strategy = self.strategy
        if strategy is None or strategy.outcome is Outcome.RUNNING:
            return
        ok = strategy.outcome is Outcome.DONE
        if ok and self.pool.still_accepting(DRAIN_ACK_GRACE):
            # "Done" means every new connection reaches the new generation: wait until the
            # retired workers confirm they stopped accepting (a worker busy in one long
            # request cannot accept anyway, hence the short bound).
            return
        mode = self.current.mode if self.current else strategy.mode
        message = (
            f"{mode} reload done: generation {self.pool.generation} serves"
            if ok
            else f"{mode} reload aborted: {strategy.reason}; "
            f"generation {self.pool.generation} keeps serving"
        )
        (log.info if ok else log.error)("%s", message)
        self.strategy = None
        sockactd_log.set_generation(self.pool.generation)
        self.last_reload = (ok, message, self.pool.generation)
        waiters = self.current.waiters if self.current else []
        self.current = None
        self._move(ReloadFinished(ok))
        self.notifier.ready(message if not ok else self._status_text())
        for waiter in waiters:
            waiter.send(Response(ok, message))
        self._start_next_reload()

    # ReloadHost, for ReexecReload ----------------------------------------------
    def start_preflight(self) -> None:
        output = tempfile.TemporaryFile()  # noqa: SIM115 -- closed when the process exits
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LISTEN_", "NOTIFY_SOCKET", "WATCHDOG_"))
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "sockactd", "--check", *self.argv],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            env=env,
            close_fds=True,
            cwd=self.start_dir,
        )
        pidfd = os.pidfd_open(process.pid)
        self.preflight = Preflight(process, pidfd, output)
        self.selector.register(pidfd, selectors.EVENT_READ, self._on_preflight_exit)

    def _on_preflight_exit(self, fd: int, events: int) -> None:
        preflight = self.preflight
        assert preflight is not None
        self.preflight = None
        self._unregister(fd)
        os.close(fd)
        code = preflight.process.wait()
        with preflight.output as output:
            output.seek(0)
            details = output.read().decode("utf-8", "replace")
        if code != 0:
            log.error("pre-flight check of the new code failed (exit %d):\n%s", code, details)
        if self.strategy is not None:
            self.strategy.on_preflight(self.pool, code == 0, _last_lines(details))
            self._after_strategy()

    def exec_in_place(self) -> None:
        queued = [p.mode for p in self.queue]
        waiting = list(self.current.waiters) if self.current else []
        for pending in self.queue:
            waiting += pending.waiters  # they learn the outcome of the standard reload
        log.info("re-executing master %d in place", os.getpid())
        self.notifier.status("standard reload: re-executing the master")
        handover.exec_in_place(self, queued)
        # Only reached if execve failed; handover logged why.

    # --- stopping -----------------------------------------------------------
    def stop(self, graceful: bool, why: str) -> None:
        log.info("%s stop: %s", "graceful" if graceful else "fast", why)
        self._move(StopRequested(graceful))
        self._begin_stop(graceful)

    def _begin_stop(self, graceful: bool) -> None:
        self.notifier.stopping(f"stopping ({'graceful' if graceful else 'fast'})")
        self.queue_fail("the server is stopping")
        if self.preflight is not None:
            self.preflight.process.kill()
        now = self.kernel.monotonic()
        for worker in self.pool:
            if graceful:
                self.pool.retire(worker, self.config.reload_mercy)
            else:
                self.pool.kill(worker, signal.SIGINT)
                worker.state = WorkerState.DRAINING
        mercy = self.config.reload_mercy if graceful else FAST_STOP_GRACE
        deadline = now + mercy
        self._stop_deadline = min(self._stop_deadline or deadline, deadline)
        self._next_extend = now
        if len(self.pool) == 0:
            self._move(AllGone())

    def queue_fail(self, why: str) -> None:
        pending = list(self.queue)
        if self.current is not None:
            pending.append(self.current)
        self.queue.clear()
        self.current, self.strategy = None, None
        for item in pending:
            for waiter in item.waiters:
                waiter.send(Response(False, f"{item.mode} reload not done: {why}"))

    # --- systemd and status -------------------------------------------------
    def _ping(self, now: float) -> None:
        if self._watchdog and now >= self._next_watchdog:
            self.notifier.watchdog()
            self._next_watchdog = now + self._watchdog
        if self.phase in (Phase.RELOADING, Phase.STOPPING) and now >= self._next_extend:
            self.notifier.extend_timeout(EXTEND_BY)
            self._next_extend = now + EXTEND_EVERY

    def _status_text(self) -> str:
        return status_line(self)

    def _publish_status(self) -> None:
        text = self._status_text()
        if text != self._last_status:
            self._last_status = text
            self.notifier.status(text)

    def _on_control_request(self, request: ControlRequest, replier: Replier) -> None:
        if request.command is Command.STATUS:
            replier.send(Response(True, self._status_text(), dict(status_data(self))))
        elif request.command is Command.RELOAD:
            if request.wait:
                self.request_reload(request.mode, replier)
            else:
                before = replier.answered
                self.request_reload(request.mode, None)
                if not before and not replier.answered:
                    refusal = self._refusal(request.mode or self.config.reload_mode)
                    replier.send(Response(not refusal, refusal or "reload queued"))

    def _move(self, event: PhaseEvent) -> None:
        self.phase = next_phase(self.phase, event)

    def _close(self) -> None:
        self.notifier.status("stopped")
        if self.triggers is not None:
            self.triggers.close()
        self.control.close()
        self.selector.close()


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])
