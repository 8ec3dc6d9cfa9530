"""The worker table: spawn, retire, kill and forget workers; answer questions about them.

It sits below both the master and the reload strategies (reload/), which move
workers through it; it imports neither. `ExitReason` lives here because a
worker carries it: whoever decides that a worker goes sets it.

The pool knows generations: `generation` is the one that serves (committed),
`pending` is the one a reload is starting (None outside reloads). It never
decides *when* to do something -- master.py and the reload strategies do --
and it never blocks: exits and frames arrive through the master's selector.
"""

from __future__ import annotations

import enum
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sockactd.log import get_logger
from sockactd.worker.board import Board
from sockactd.worker.status import FrameReader

if TYPE_CHECKING:
    from sockactd.osapi import Kernel

__all__ = ["ExitReason", "Worker", "WorkerPool", "WorkerState"]

log = get_logger(__name__)


class ExitReason(enum.Enum):
    """Why a worker left (the `reason` label of sockactd_worker_exits_total)."""

    CRASH = "crash"  # died while serving, unasked
    BOOT_FAILURE = "boot-failure"  # died or was killed before it reported ready
    HARAKIRI = "harakiri"
    MAX_REQUESTS = "max-requests"
    LIFETIME = "max-worker-lifetime"
    MEMORY = "memory"  # reload-on-rss: stopped itself, replaced
    MEMORY_KILL = "memory-kill"  # evil-reload-on-rss: killed by the master
    LIVENESS = "liveness"  # idle and silent (stopped, stuck): killed once replaced
    RELOAD = "reload"
    SCALE_DOWN = "scale-down"
    STOP = "stop"  # the server is stopping


class WorkerState(enum.Enum):
    BOOTING = "booting"  # forked, app not yet imported
    SERVING = "serving"  # reported READY, accepting
    DRAINING = "draining"  # told to finish in-flight requests and exit
    GONE = "gone"  # exited and reaped


@dataclass(eq=False)
class Worker:
    pid: int
    generation: int
    status_fd: int
    board: Board
    started: float
    state: WorkerState = WorkerState.BOOTING
    pidfd: int | None = None
    ready_deadline: float | None = None
    kill_deadline: float | None = None
    reader: FrameReader = field(default_factory=FrameReader)
    boot_error: str = ""
    replacing: Worker | None = None  # set on a replacement spawned for max-requests
    recycling: bool = False  # a replacement for this worker is booting
    accepting: bool = False  # READY seen, and no DRAINING frame since
    number: int = 0  # 1..N among active workers, like uWSGI's worker id (a replacement reuses it)
    exit_reason: ExitReason | None = None  # set by whoever decided this worker goes
    ready_at: float | None = None
    silent: bool = False  # failed its liveness check; killed once its replacement is ready

    def __repr__(self) -> str:
        return f"<worker {self.pid} g{self.generation} {self.state.value}>"


# Spawner: forks and returns (pid, status read fd, board); the child never returns.
Spawner = Callable[[int], tuple[int, int, Board]]


class WorkerPool:
    def __init__(self, kernel: Kernel, spawner: Spawner, size: int, ready_timeout: float) -> None:
        self.kernel = kernel
        self._spawner = spawner
        self.size = size
        self.ready_timeout = ready_timeout
        self.generation = 1
        self.pending: int | None = None
        self._workers: dict[int, Worker] = {}
        self.on_added: Callable[[Worker], None] = lambda worker: None
        self.on_removed: Callable[[Worker], None] = lambda worker: None

    # --- generations ---------------------------------------------------------
    def new_generation(self) -> int:
        self.pending = max((self.generation, *(w.generation for w in self._workers.values()))) + 1
        return self.pending

    def commit(self) -> None:
        if self.pending is not None:
            self.generation, self.pending = self.pending, None

    def discard(self) -> None:
        self.pending = None

    @property
    def spawn_generation(self) -> int:
        return self.pending if self.pending is not None else self.generation

    # --- changes -------------------------------------------------------------
    def spawn(self, generation: int | None = None) -> Worker:
        gen = self.spawn_generation if generation is None else generation
        return self.track(*self._spawner(gen), gen)

    def track(self, pid: int, status_fd: int, board: Board, gen: int) -> Worker:
        """Start supervising a worker that was just forked (by spawn() or before the master)."""
        now = self.kernel.monotonic()
        worker = Worker(
            pid=pid,
            generation=gen,
            status_fd=status_fd,
            board=board,
            started=now,
            ready_deadline=now + self.ready_timeout,
        )
        worker.pidfd = self.kernel.pidfd_open(pid)
        worker.number = self._free_number()
        self._workers[pid] = worker
        self.on_added(worker)
        log.debug("spawned %r", worker)
        return worker

    def adopt(self, worker: Worker) -> None:
        """Take over a worker forked by a previous image of this master (standard reload)."""
        worker.pidfd = self.kernel.pidfd_open(worker.pid)
        worker.number = self._free_number()
        self._workers[worker.pid] = worker
        self.on_added(worker)

    def mark_ready(self, worker: Worker) -> None:
        if worker.state is WorkerState.BOOTING:
            worker.state = WorkerState.SERVING
            worker.accepting = True
            worker.ready_deadline = None
            worker.ready_at = self.kernel.monotonic()

    def retire(self, worker: Worker, mercy: float) -> None:
        """Ask `worker` to finish in-flight requests and exit; SIGKILL after `mercy` seconds."""
        if worker.state in (WorkerState.DRAINING, WorkerState.GONE):
            return
        worker.state = WorkerState.DRAINING
        worker.ready_deadline = None
        worker.kill_deadline = self.kernel.monotonic() + mercy
        self.kernel.kill(worker.pid, signal.SIGTERM)

    def kill(self, worker: Worker, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig` now. The state is kept, so the exit is judged by what the worker was doing."""
        if worker.state is not WorkerState.GONE:
            if sig is signal.SIGKILL:
                worker.kill_deadline = None
            self.kernel.kill(worker.pid, sig)

    def reap(self, worker: Worker) -> int | None:
        """Collect `worker`'s exit status if it exited; remove it from the table."""
        if self._workers.get(worker.pid) is not worker:
            return None  # already reaped and forgotten
        status = self.kernel.reap(worker.pid)
        if status is None:
            return None
        self.forget(worker)
        return status

    def forget(self, worker: Worker) -> None:
        worker.state = WorkerState.GONE
        if self._workers.pop(worker.pid, None) is not None:
            self.on_removed(worker)
            for fd in (worker.status_fd, worker.pidfd):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            worker.status_fd, worker.pidfd = -1, None  # the numbers are someone else's now
            worker.board.close()

    def _free_number(self) -> int:
        """The lowest number no active worker holds (one being recycled gives its number up)."""
        taken = {w.number for w in self.active() if not w.recycling}
        return next(n for n in range(1, len(taken) + 2) if n not in taken)

    # --- questions -----------------------------------------------------------
    def __iter__(self) -> Iterator[Worker]:
        return iter(list(self._workers.values()))

    def __len__(self) -> int:
        return len(self._workers)

    def by_pid(self, pid: int) -> Worker | None:
        return self._workers.get(pid)

    def in_state(self, state: WorkerState, generation: int | None = None) -> list[Worker]:
        return [
            w
            for w in self._workers.values()
            if w.state is state and (generation is None or w.generation == generation)
        ]

    def serving(self, generation: int | None = None) -> list[Worker]:
        return self.in_state(WorkerState.SERVING, generation)

    def booting(self, generation: int | None = None) -> list[Worker]:
        return self.in_state(WorkerState.BOOTING, generation)

    def still_accepting(self) -> list[Worker]:
        """Retired workers that have neither confirmed they stopped accepting nor exited.

        No timeout makes one count as stopped: a worker busy in a request, or hung, could
        accept again. One that never confirms is killed at its kill deadline
        (worker-reload-mercy) and leaves this list when it is reaped.
        """
        return [
            w for w in self._workers.values() if w.state is WorkerState.DRAINING and w.accepting
        ]

    def active(self) -> list[Worker]:
        """Workers that serve or will serve soon (not draining, not gone)."""
        return [
            w
            for w in self._workers.values()
            if w.state in (WorkerState.BOOTING, WorkerState.SERVING)
        ]
