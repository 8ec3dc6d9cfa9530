"""Each worker's status pipe and pidfd in the master's loop: frames and exits become calls.

Rule 1: a watch belongs to one `Worker` object and its callback names that
        object, never an fd number. When the pool forgets a worker its watches
        are cancelled before its fds are closed, so an event for it still
        queued in the current `select()` batch is dropped (loop.py, Rule 2)
        instead of reading whatever the kernel gave that fd number next.
Rule 2: nothing is read from a worker that is gone; before a worker is reaped,
        what it left in its pipe (a READY, a traceback) is read first.
Rule 3: bytes that are not a frame (`FrameReader.error`) do not stop the master:
        that worker is killed (it cannot tell the master anything any more) and its
        exit is judged, and the worker replaced, as any other; the rest serve on.
What a frame or an exit means is the caller's business (`on_frame`, `on_exit`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from sockactd.log import get_logger
from sockactd.master.loop import Loop, Watch
from sockactd.pool import Worker, WorkerPool, WorkerState
from sockactd.worker.status import Frame

__all__ = ["WorkerChannels"]

log = get_logger(__name__)

OnFrame = Callable[[Worker, Frame], None]
OnExit = Callable[[Worker, WorkerState, int], None]  # worker, state before exit, wait status


class WorkerChannels:
    def __init__(self, loop: Loop, pool: WorkerPool, on_frame: OnFrame, on_exit: OnExit) -> None:
        self._loop = loop
        self._pool = pool
        self._on_frame = on_frame
        self._on_exit = on_exit
        self._watches: dict[Worker, list[Watch]] = {}
        pool.on_added = self.watch
        pool.on_removed = self.unwatch

    def watch(self, worker: Worker) -> None:
        watches = [self._loop.watch(worker.status_fd, lambda events: self.read_status(worker))]
        if worker.pidfd is not None:
            watches.append(self._loop.watch(worker.pidfd, lambda events: self.reap(worker)))
        self._watches[worker] = watches

    def unwatch(self, worker: Worker) -> None:
        for watch in self._watches.pop(worker, ()):
            self._loop.cancel(watch)

    def read_status(self, worker: Worker) -> None:
        if worker.state is WorkerState.GONE:
            return  # Rule 2 (its fds may already belong to someone else)
        if worker.reader.error is not None:
            return  # Rule 3: already broken, and killed
        try:
            data = os.read(worker.status_fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # EOF: the exit arrives through the pidfd (or SIGCHLD)
            watches = self._watches.get(worker, [])
            if watches:
                self._loop.cancel(watches[0])
            return
        for frame in worker.reader.feed(data):
            self._on_frame(worker, frame)
        if worker.reader.error is not None:
            self._kill_garbled(worker, worker.reader.error)

    def _kill_garbled(self, worker: Worker, why: str) -> None:
        """Rule 3: a worker whose pipe carries garbage is killed; its exit comes as any other."""
        log.error("worker %d (generation %d) wrote garbage to its status pipe (%s); killing it",
                  worker.pid, worker.generation, why)  # fmt: skip
        watches = self._watches.get(worker, [])
        if watches:
            self._loop.cancel(watches[0])  # nothing more is read from it
        self._pool.kill(worker)

    def reap(self, worker: Worker) -> None:
        if worker.state is WorkerState.GONE:
            return  # SIGCHLD and its pidfd reported the same exit in one select()
        self.read_status(worker)  # Rule 2: a READY or a traceback may still sit in the pipe
        state = worker.state
        status = self._pool.reap(worker)
        if status is not None:
            self._on_exit(worker, state, status)

    def reap_all(self) -> None:
        for worker in self._pool:
            self.reap(worker)
