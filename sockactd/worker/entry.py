"""The child side of a fork: turn a copy of the master into a worker.

Order matters: signals first (so a SIGTERM during boot is not lost), then
a pidfd of the master and a check that it is still there, then shedding everything
that belongs to the master (notify socket and NOTIFY_SOCKET, the master's fds), then
the app, then READY on the status pipe, then serving. `run_worker` never returns: it
ends in os._exit so no master code (atexit handlers, finalizers of master objects)
runs here. How a worker follows its master's death: worker/follow.py.
"""

from __future__ import annotations

import gc
import os
import sys

from sockactd import log as sockactd_log
from sockactd.errors import AppImportError, ExitCode
from sockactd.log import get_logger
from sockactd.osapi import MASTER_SIGNALS, csignal
from sockactd.systemd.activation import HANDOVER_ENV
from sockactd.worker.board import Board
from sockactd.worker.follow import after_first_wakeup, load_app_following, open_master_pidfd
from sockactd.worker.handlers import handler_for
from sockactd.worker.lobby import lobby_for

# Imported here, in the master, so the request path is loaded once and shared
# copy-on-write by every worker instead of imported again after each fork (and so
# are the handlers of the listeners' protocols, by `fork_worker`).
from sockactd.worker.serve import Links, serve
from sockactd.worker.status import FrameKind, write_frame

TYPE_CHECKING = False  # typing is not imported at run time: cold start
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import NoReturn

    from sockactd.app import WSGIApp
    from sockactd.config.model import Config
    from sockactd.sockets import Listener
    from sockactd.worker.lobby import Lobby
    from sockactd.worker.module_report import ModuleReporter

__all__ = ["WorkerSpec", "fork_worker", "run_worker"]

log = get_logger(__name__)

# Variables that belong to the master's conversation with systemd.
_MASTER_ONLY_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", HANDOVER_ENV)


class WorkerSpec:
    """Everything a freshly forked worker needs."""

    __slots__ = ("app", "board", "close_in_child", "config", "generation", "listeners",
                 "lobby", "master_pid", "status_fd")  # fmt: skip

    def __init__(
        self,
        config: Config,
        listeners: Sequence[Listener],
        app: WSGIApp | None,
        generation: int,
        status_fd: int,
        board: Board,
        master_pid: int,
        close_in_child: Callable[[], None],
        lobby: Lobby | None = None,
    ) -> None:
        self.config = config
        self.listeners = listeners
        self.app = app  # None: import it here (--lazy-apps)
        self.generation = generation
        self.status_fd = status_fd  # write end of this worker's status pipe
        self.board = board
        self.master_pid = master_pid
        self.close_in_child = close_in_child  # drops the master's notify socket etc.
        self.lobby = lobby  # shared with the generation's other workers (lobby.py)


def fork_worker(
    fork: Callable[[], int],
    config: Config,
    listeners: Sequence[Listener],
    app: WSGIApp | None,
    generation: int,
    close_in_child: Callable[[], None],
) -> tuple[int, int, Board]:
    """Fork one worker; in the parent return (pid, status pipe read end, board)."""
    for listener in listeners:
        handler_for(listener.protocol)  # its protocol's modules, loaded before the fork
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    board = Board.create()
    lobby = lobby_for(generation)
    # Objects that exist now stay shared with the worker: untracked by the collector,
    # their pages are not copied on write when it runs in the worker.
    gc.freeze()
    pid = fork()
    if pid == 0:
        os.close(read_fd)
        run_worker(WorkerSpec(config, listeners, app, generation, write_fd, board,
                              os.getppid(), close_in_child, lobby))  # fmt: skip
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    return pid, read_fd, board


def run_worker(spec: WorkerSpec) -> NoReturn:
    code = ExitCode.FAILURE
    try:
        code = _run(spec)
    except BaseException:  # a worker must never fall back into the master's code
        log.exception("worker crashed")
    finally:
        os._exit(code)


def _run(spec: WorkerSpec) -> int:
    set_drain_limit(spec.config.worker_reload_mercy)
    stop_fd, wakeup_fd = _install_signals()
    master_fd = open_master_pidfd(spec.master_pid)
    if master_fd is None:
        return ExitCode.FAILURE  # the master died right after the fork
    spec.close_in_child()
    for name in _MASTER_ONLY_ENV:
        os.environ.pop(name, None)
    os.environ["SOCKACTD_GENERATION"] = str(spec.generation)
    sockactd_log.set_role("worker")
    sockactd_log.set_generation(spec.generation)
    _close_master_fds(
        keep={spec.status_fd, spec.board.fd, stop_fd, wakeup_fd, master_fd}
        | {listener.sock.fileno() for listener in spec.listeners}
        | (spec.lobby.fds() if spec.lobby is not None else set())
    )
    app = spec.app
    reporter: ModuleReporter | None = None
    if spec.config.autoreload_seconds:
        # A .pyc records its source's mtime in whole seconds: one written now could be
        # taken for a file saved again within the same second.
        sys.dont_write_bytecode = True
    if app is None:
        try:
            app = load_app_following(spec.config, master_fd)
        except AppImportError as exc:
            write_frame(spec.status_fd, FrameKind.BOOT_FAILED, exc.details)
            return ExitCode.APP_IMPORT_FAILED
    if spec.config.autoreload_seconds:
        app, reporter = _report_modules(app, spec.status_fd)
    try:
        write_frame(spec.status_fd, FrameKind.READY)
    except BrokenPipeError:
        log.warning("worker %d: its master is gone before it was ready; exiting", os.getpid())
        return ExitCode.FAILURE
    links = Links(
        stop_fd,
        on_draining=lambda why: _tell_draining(spec.status_fd, why, reporter),
        after_first_wakeup=lambda: after_first_wakeup(spec.master_pid, master_fd),
        master_fd=master_fd,
        lobby=spec.lobby if spec.config.processes > 1 else None,  # no one else to hand to
    )
    serve(spec.listeners, app, spec.config, spec.board, links)
    return ExitCode.OK


def _report_modules(app: WSGIApp, status_fd: int) -> tuple[WSGIApp, ModuleReporter]:
    """py-autoreload: tell the master what this worker imported, now and after requests."""
    from sockactd.worker.module_report import ModuleReporter, reporting

    reporter = ModuleReporter(status_fd)
    reporter.report_new()
    return reporting(app, reporter), reporter


def _tell_draining(status_fd: int, why: str, reporter: ModuleReporter | None) -> None:
    """Tell the master this worker no longer accepts, and why; bound the drain by our clock.

    With py-autoreload, through the `reporter`: a handler thread may be writing a report.
    """
    csignal.alarm(_drain_limit)  # the master that would kill a late drain may be gone
    try:
        if reporter is None:
            write_frame(status_fd, FrameKind.DRAINING, why)
        else:
            reporter.send(FrameKind.DRAINING, why)
    except BrokenPipeError:
        pass  # the master is gone: serve() said so and drains all the same


def _install_signals() -> tuple[int, int]:
    """SIGTERM wakes serve() through a pipe; SIGINT/SIGQUIT end the worker at once."""
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    # Meant for the master: a signal sent to the whole process group must not kill us.
    for sig in (
        csignal.SIGHUP,
        csignal.SIGUSR1,
        csignal.SIGUSR2,
        csignal.SIGTTIN,
        csignal.SIGTTOU,
        csignal.SIGWINCH,
    ):
        csignal.signal(sig, csignal.SIG_IGN)
    csignal.signal(csignal.SIGCHLD, csignal.SIG_DFL)
    csignal.signal(csignal.SIGINT, csignal.SIG_DFL)
    csignal.signal(csignal.SIGQUIT, _exit_now)
    csignal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    csignal.signal(csignal.SIGTERM, _graceful)
    # Blocked by a master that was still starting when it forked us (osapi.MASTER_SIGNALS).
    csignal.pthread_sigmask(csignal.SIG_UNBLOCK, MASTER_SIGNALS)
    return read_fd, write_fd


def _graceful(signum: int, frame: object) -> None:
    """Present so CPython writes to the wakeup fd; serve() sees it and drains."""
    # Bound the drain even if the master is gone (parent-death signal is SIGTERM):
    # the default SIGALRM action ends the process.
    csignal.alarm(_drain_limit)


_drain_limit = 120


def _exit_now(signum: int, frame: object) -> None:
    os._exit(0)


def _close_master_fds(keep: set[int]) -> None:
    """Close every fd inherited from the master except stdio and `keep`."""
    keep = keep | {0, 1, 2}
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def set_drain_limit(seconds: float) -> None:
    global _drain_limit
    _drain_limit = max(1, int(seconds) + 1)
