"""The master: one event loop that supervises workers and talks to systemd.

Theory of operation. Everything arrives as a readable fd in one selector --
the signal wakeup pipe, each worker's status pipe and pidfd, the control
socket, the trigger watcher, a standard reload's pre-flight process -- or as a
deadline in `_tick`. Each handler is short and never blocks. The phase table
(phase.py) decides which moves are legal; reloads.py runs reload requests one
at a time through the strategies in reload/; health.py keeps the configured
number of healthy workers; the pool (pool.py) does the forking and signalling.

Invariants:
* READY=1 is sent only when every initial worker reported ready, and again
  at the end of every reload, success or failure (systemd waits for it).
* At start-up, `boot-attempts` boot failures in a row end the master with the
  reason in STATUS=/ERRNO= and a non-zero exit: fail loudly, never loop.
* No threads, no sleeps, no logging in signal handlers.

Why this module is over ~300 lines: it is the one place the parts are wired
together (each is handed its few things here, none of them gets the master) and
the one place each event is routed to them. What has a noun of its own has left
(reloads, health, status, handover, recycle, liveness, channels, respawn); what
stays are short handlers that move the master's own state -- the phase, the
exit code, the start-up boot-failure count, the stop deadline. Moving those
handlers out would create a helper that needs the master back.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sockactd.app import started_environ
from sockactd.config.model import Config
from sockactd.control.protocol import Command, ControlRequest
from sockactd.control.server import ControlServer, Replier
from sockactd.errors import ControlError, ExitCode
from sockactd.log import get_logger, setup_logging
from sockactd.master import handover
from sockactd.master.channels import WorkerChannels
from sockactd.master.endpoints import MonitorSocket, close_monitor_sockets
from sockactd.master.health import Health
from sockactd.master.liveness import replace_silent, retire_replaced
from sockactd.master.loop import Loop
from sockactd.master.phase import (
    AllGone,
    AllReady,
    BootGaveUp,
    Phase,
    PhaseTracker,
    StopRequested,
)
from sockactd.master.procinfo import rss
from sockactd.master.reconfig import Reconfigure, apply_process_settings
from sockactd.master.recycle import Recycler
from sockactd.master.reloads import Reloads
from sockactd.master.signals import SIGNAL_ACTIONS, Reload, Scale, SignalInbox, Stop
from sockactd.master.status import status_data, status_line
from sockactd.master.tally import Tally
from sockactd.osapi import describe_status
from sockactd.pool import Worker, WorkerPool, WorkerState
from sockactd.sockets import Listener, close_listeners
from sockactd.systemd.notify import Notifier, watchdog_interval
from sockactd.triggers.base import rules_from_config
from sockactd.triggers.opener import open_trigger_watcher
from sockactd.worker.board import Board
from sockactd.worker.entry import fork_worker
from sockactd.worker.status import Frame, FrameKind

if TYPE_CHECKING:
    from sockactd.app import WSGIApp
    from sockactd.autoreload.watch import CodeWatcher
    from sockactd.master.monitor import MonitorServer
    from sockactd.modes import ReloadMode
    from sockactd.osapi import Kernel
    from sockactd.triggers.base import TriggerSource

__all__ = ["Master"]

log = get_logger(__name__)

EXTEND_EVERY = 5.0  # seconds between EXTEND_TIMEOUT_USEC while reloading or stopping
EXTEND_BY = 20.0
FAST_STOP_GRACE = 2.0  # SIGINT to workers, then SIGKILL after this
STEADY_TICK = 1.0


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
        first_workers: Sequence[tuple[int, int, Board]] = (),
        monitor_sockets: Sequence[MonitorSocket] = (),
        control: tuple[str | None, int | None] = (None, None),  # path, fd bound by run.py
    ) -> None:
        self.config = config
        self.listeners = list(listeners)
        self.notifier = notifier
        self.app = app
        self.kernel = kernel
        self.argv = list(argv)
        self.start_dir = start_dir or os.getcwd()
        self.phase = PhaseTracker()
        self.exit_code = ExitCode.OK
        self.started_wall = resumed.started_wall if resumed else time.time()
        self.loop = Loop()
        self.pool = WorkerPool(kernel, self._fork_worker, config.processes, config.ready_timeout)
        self.channels = WorkerChannels(self.loop, self.pool, self._on_frame, self._on_worker_exit)
        self.pool.on_removed = self._forget_worker  # the tally keeps its counts first
        self.tally = Tally.from_json(resumed.tally) if resumed else Tally()
        self.reloads = Reloads(
            self.pool,
            self.phase,
            notifier,
            self.tally,
            kernel,
            lambda: self.config,
            Reconfigure(self.argv, started_environ(), self.start_dir, self.use_config),
            self.loop,
            self.status_text,
            self._reexec,
            lambda: self.control.path if self.control is not None else "",
            on_preflight_failed=self._watch_traceback,
        )
        self.health = Health(
            self.pool,
            self.phase,
            kernel.monotonic,
            lambda: self.config,
            lambda: self.reloads.strategy is not None,
            self.reloads.pauses_respawn,
        )
        self.recycler = Recycler(
            lambda: self.config, self.pool, lambda: self.reloads.strategy is not None
        )
        self._boot_failures = 0
        self._logged_boot_error = ""
        self._stop_deadline: float | None = None
        self._stop_limit = ""  # which stop set `_stop_deadline`, for the line at it
        self._next_extend = 0.0
        self._last_status = ""
        self._watchdog = watchdog_interval()
        self._next_watchdog = 0.0
        # The reload signal's handler exists before the first READY=1 (systemd#39692).
        self.inbox = SignalInbox()
        self.loop.watch(self.inbox, self._on_signals)
        self.control = self._open_control(resumed, *control)
        self.triggers = self._open_triggers()
        self.monitors = self._open_monitors(monitor_sockets)
        self.autoreload = self._open_autoreload()
        for pid, status_fd, board in first_workers:
            self.pool.track(pid, status_fd, board, self.pool.generation)
        if resumed is not None:
            self.pool.generation = resumed.generation
            for record in resumed.workers:
                self.pool.adopt(record.to_worker())
            server, fds = self.control, resumed.waiting_fds
            waiters = [server.resume(fd).send_result for fd in fds] if server else []
            self.reloads.resume_standard(waiters, resumed.queued)

    # --- set-up -------------------------------------------------------------
    def _open_control(
        self, resumed: handover.Handover | None, path: str | None, fd: int | None
    ) -> ControlServer | None:
        inherited = resumed.control_fd if resumed else fd
        if path is None:
            if inherited is not None:
                os.close(inherited)  # a standard reload to a configuration without one
            log.info("no control socket: set control-socket to use sockactctl")
            return None
        try:
            server = ControlServer(path, self._on_control_request, inherited_fd=inherited)
        except ControlError as exc:  # only after a standard reload: at start run.py bound it
            log.error("no control socket after the reload: %s", exc)
            return None
        server.attach(self.loop)
        log.info("control socket at %s", path)
        return server

    def _open_monitors(self, sockets: Sequence[MonitorSocket]) -> list[MonitorServer]:
        if not sockets:
            return []  # nothing of monitoring is imported: the master's memory stays as it was
        from sockactd.master.monitoring import open_monitors
        from sockactd.master.snapshot import Sources

        sources = Sources(self.pool, self.tally, self.listeners, self.started_wall,
                          self.kernel.monotonic, time.time, rss)  # fmt: skip
        return open_monitors(sockets, sources, self.loop)

    def _open_triggers(self) -> TriggerSource | None:
        watcher = open_trigger_watcher(rules_from_config(self.config))
        if watcher is not None:
            self.loop.watch(watcher, self._on_triggers)
        return watcher

    def _open_autoreload(self) -> CodeWatcher | None:
        if not self.config.autoreload_seconds:
            return None  # py-autoreload off: its package is never imported
        from sockactd.autoreload.watch import open_code_watcher

        watcher = open_code_watcher(self.config)
        fd = watcher.fileno() if watcher is not None else None
        if fd is not None:
            self.loop.watch(fd, self._on_code_change)
        return watcher

    # --- questions the parts ask ------------------------------------------------
    def status_text(self) -> str:
        return status_line(self.phase.current, self.pool, self.reloads)

    def _reexec(self, queued: list[ReloadMode]) -> None:
        """A standard reload's execve in place: the next image gets our record and fds."""
        record = handover.Handover(
            generation=self.pool.generation,
            workers=tuple(handover.WorkerRecord.of(w) for w in self.pool
                          if w.state is not WorkerState.GONE),
            control_fd=None,  # exec_in_place fills in the control server's fds
            waiting_fds=(),
            queued=tuple(queued),
            started_wall=self.started_wall,
            tally=self.tally.to_json(),
        )  # fmt: skip
        sockets = [(lst.sock.fileno(), lst.protocol) for lst in self.listeners]
        sockets += [(m.endpoint.fileno(), m.endpoint.name) for m in self.monitors]
        plan = handover.ExecPlan(sockets, self.control, self.argv, self.start_dir,
                                 self.config.chdir, self.inbox.block_for_exec,
                                 self.kernel)  # fmt: skip
        handover.exec_in_place(record, plan)

    def use_config(self, config: Config) -> None:
        """Take `config` for the workers forked from now on and for the master's limits."""
        apply_process_settings(self.config, config, self.start_dir)
        if config.processes != self.config.processes:  # else keep a SIGTTIN/SIGTTOU count
            self.pool.size = config.processes
        self.pool.ready_timeout = config.ready_timeout
        self.reloads.worker_reload_mercy = config.worker_reload_mercy
        Board.describing = bool(config.harakiri)  # workers forked from now on (run.py: first)
        setup_logging(config.log_level, role="master")
        self.config = config

    # --- the loop -----------------------------------------------------------
    def run(self) -> int:
        log.info(
            "sockactd master %d serving %s on %s",
            os.getpid(),
            self.config.app_target,
            ", ".join(f"{lst.address} ({lst.protocol})" for lst in self.listeners),
        )
        try:
            while self.phase.current is not Phase.EXITING:
                self.loop.run_once(self._timeout())
                self._tick(self.kernel.monotonic())
        finally:
            self._close()
        return self.exit_code

    def _timeout(self) -> float:
        now = self.kernel.monotonic()
        control = self.control.next_deadline() if self.control else None
        deadlines = [now + STEADY_TICK, control or now + STEADY_TICK]
        if self.triggers is not None:
            deadlines.append(self.triggers.next_deadline() or now + STEADY_TICK)
        if self.autoreload is not None:
            deadlines.append(self.autoreload.next_deadline() or now + STEADY_TICK)
        if self._watchdog:
            deadlines.append(self._next_watchdog)
        for worker in self.pool:
            deadlines += [d for d in (worker.ready_deadline, worker.kill_deadline) if d]
        if self._stop_deadline:
            deadlines.append(self._stop_deadline)
        deadlines.append(self.reloads.next_deadline() or now + STEADY_TICK)
        if self.health.deficit() > 0:
            deadlines.append(self.health.next_spawn)
        return max(0.0, min(deadlines) - now)

    def _tick(self, now: float) -> None:
        if self.control is not None:
            self.control.expire(now)
        for monitor in self.monitors:
            monitor.expire(now)
        self.reloads.check_deadline(now)
        self.reloads.settle()
        if self.triggers is not None:
            for mode in self.triggers.due(now):
                log.info("trigger file changed: %s reload", mode)
                self.reloads.request(mode)
        if self.autoreload is not None and self.autoreload.due(now):
            self.reloads.request(None)
        if self._stop_deadline is not None and now >= self._stop_deadline:
            # before the workers' own deadlines: a graceful stop's retire armed each one's
            # for the same moment, and one SIGKILL gets one line
            self._stop_deadline = None
            self.health.kill_at_stop(now, self._stop_limit)
        self.health.check_deadlines(now)
        self.health.check_boards(now)
        self.recycler.check(now)
        if self.phase.is_serving() and self.reloads.strategy is None:
            replace_silent(self.pool, now)
        self.health.keep_capacity(now)
        self._ping(now)
        self._publish_status()

    # --- events from the selector -------------------------------------------
    def _on_signals(self, events: int) -> None:
        for signum in self.inbox.drain():
            action = SIGNAL_ACTIONS.get(signum)
            log.debug("signal %s -> %s", signum.name, action)
            if isinstance(action, Stop):
                self.stop(graceful=action.graceful, why=f"{signum.name} received")
            elif isinstance(action, Reload):
                self.reloads.request(action.mode)
            elif isinstance(action, Scale):
                self.health.scale(action.delta)
        self.channels.reap_all()  # SIGCHLD, and a safety net if a pidfd event was missed

    def _on_triggers(self, events: int) -> None:
        if self.triggers is not None:
            self.triggers.on_readable(self.kernel.monotonic())

    def _on_code_change(self, events: int) -> None:
        if self.autoreload is not None:
            self.autoreload.on_readable(self.kernel.monotonic())

    def _on_control_request(self, request: ControlRequest, replier: Replier) -> None:
        if request.command is Command.STATUS:
            data = status_data(self.phase.current, self.pool, self.reloads,
                               self.kernel.monotonic(), self.started_wall)  # fmt: skip
            replier.send_status(self.status_text(), data)
        elif request.command is Command.RELOAD and request.wait:
            self.reloads.request(request.mode, replier.send_result)
        elif request.command is Command.RELOAD:
            replier.send_queued(self.reloads.request(request.mode))

    # --- workers ------------------------------------------------------------
    def _fork_worker(self, generation: int) -> tuple[int, int, Board]:
        return fork_worker(self.kernel.fork, self.config, self.listeners, self.app,
                           generation, self.notifier.close_in_child)  # fmt: skip

    def _on_frame(self, worker: Worker, frame: Frame) -> None:
        if frame.kind is FrameKind.READY:
            self._on_ready(worker)
        elif frame.kind is FrameKind.DRAINING:
            worker.accepting = False
            self.recycler.on_draining(worker, frame.text)
            self.reloads.settle()
        elif frame.kind is FrameKind.MODULES:
            if self.autoreload is not None:
                self.autoreload.watch(frame.text.splitlines())
        else:
            worker.boot_error = frame.text
            self._watch_traceback(frame.text)

    def _watch_traceback(self, text: str) -> None:
        """A new worker's or the pre-flight's failed import: fixing a file it names reloads."""
        if self.autoreload is not None:
            self.autoreload.watch_traceback(text)

    def _forget_worker(self, worker: Worker) -> None:
        self.tally.fold(worker.board)
        self.channels.unwatch(worker)

    def _on_ready(self, worker: Worker) -> None:
        if worker.state is not WorkerState.BOOTING:
            return
        self.pool.mark_ready(worker)
        log.info("worker %d (generation %d) ready in %.0f ms", worker.pid, worker.generation,
                 (self.kernel.monotonic() - worker.started) * 1000)  # fmt: skip
        if worker.replacing is not None:  # max-requests, liveness: the old one goes now
            retire_replaced(self.pool, worker.replacing, self.config.worker_reload_mercy)
            worker.replacing = None
        if self.phase.current is Phase.STARTING and len(self.pool.serving()) >= self.pool.size:
            self._boot_failures = 0
            self.phase.move(AllReady())
            self.notifier.ready(self.status_text())
            self.reloads.start_next()  # one asked for while starting waited until now
        self.reloads.on_ready(worker)

    def _on_worker_exit(self, worker: Worker, state: WorkerState, status: int) -> None:
        how = describe_status(status)
        self.tally.worker_exited(worker, state, stopping=self.phase.current is Phase.STOPPING)
        if worker.replacing is not None:  # a max-requests replacement that never served
            worker.replacing.recycling = False
        if state is WorkerState.BOOTING:
            self._on_boot_failure(worker, how)
        elif state is WorkerState.SERVING:
            log.warning("worker %d (generation %d) died: %s", worker.pid, worker.generation, how)
            self.health.count_serving_crash(worker)
        else:
            log.info("worker %d (generation %d) retired: %s", worker.pid, worker.generation, how)
        self.reloads.on_exit(worker)
        if self.phase.current is Phase.STOPPING and len(self.pool) == 0:
            self.phase.move(AllGone())

    def _on_boot_failure(self, worker: Worker, how: str) -> None:
        reason = worker.boot_error.strip() or f"exited while booting ({how})"
        summary = reason.splitlines()[-1]
        if reason != self._logged_boot_error:  # the traceback once, not once per attempt
            log.error("worker %d (generation %d) failed to boot (%s):\n%s",
                      worker.pid, worker.generation, how, reason)  # fmt: skip
            self._logged_boot_error = reason
        else:
            log.error("worker %d failed to boot again: %s", worker.pid, summary)
        self.health.count_boot_failure(worker)
        if self.phase.current is Phase.STARTING:
            self._boot_failures += 1
            if self._boot_failures >= self.config.boot_attempts:
                self._give_up(worker, summary)
        else:
            self.reloads.on_failed(worker, f"failed to boot: {summary}")

    def _give_up(self, worker: Worker, why: str) -> None:
        failed_import = bool(worker.boot_error)
        self.exit_code = (
            ExitCode.APP_IMPORT_FAILED if failed_import else ExitCode.WORKER_BOOT_FAILED
        )
        message = f"workers failed to boot {self._boot_failures} times, giving up: {why}"
        log.critical("%s", message)
        self.notifier.fatal(message, 22 if failed_import else 10)  # EINVAL / ECHILD
        self.phase.move(BootGaveUp())
        self._begin_stop(graceful=False)

    # --- stopping -----------------------------------------------------------
    def stop(self, graceful: bool, why: str) -> None:
        log.info("%s stop: %s", "graceful" if graceful else "fast", why)
        self.phase.move(StopRequested(graceful))
        self._begin_stop(graceful)

    def _begin_stop(self, graceful: bool) -> None:
        self.notifier.stopping(f"stopping ({'graceful' if graceful else 'fast'})")
        self.reloads.fail_all("the server is stopping")
        now = self.kernel.monotonic()
        for worker in self.pool:
            if graceful:
                self.pool.retire(worker, self.config.reload_mercy)
            else:
                self.pool.kill(worker, signal.SIGINT)
                worker.state = WorkerState.DRAINING
        mercy = self.config.reload_mercy if graceful else FAST_STOP_GRACE
        deadline = now + mercy
        if self._stop_deadline is None or deadline < self._stop_deadline:
            self._stop_deadline = deadline
            self._stop_limit = (
                f"reload-mercy ({mercy:g}s) of the graceful stop"
                if graceful
                else f"{mercy:g}s of the fast stop's SIGINT"
            )
        self._next_extend = now
        if len(self.pool) == 0:
            self.phase.move(AllGone())

    # --- systemd ------------------------------------------------------------
    def _ping(self, now: float) -> None:
        if self._watchdog and now >= self._next_watchdog:
            self.notifier.watchdog()
            self._next_watchdog = now + self._watchdog
        if self.phase.current in (Phase.RELOADING, Phase.STOPPING) and now >= self._next_extend:
            self.notifier.extend_timeout(EXTEND_BY)
            self._next_extend = now + EXTEND_EVERY

    def _publish_status(self) -> None:
        text = self.status_text()
        if text != self._last_status:
            self._last_status = text
            self.notifier.status(text)

    def _close(self) -> None:
        self.notifier.status("stopped")
        if self.triggers is not None:
            self.triggers.close()
        if self.autoreload is not None:
            self.autoreload.close()
        if self.control is not None:
            self.control.close()
        for monitor in self.monitors:
            monitor.close()
        self.loop.close()
        close_monitor_sockets([m.endpoint for m in self.monitors], unlink=True)
        close_listeners(self.listeners, unlink=True)  # only UNIX files we bound ourselves
