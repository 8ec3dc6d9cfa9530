"""With one thread per worker: the watcher that hands ready connections over while the app runs.

The app runs on the worker's only thread, so nothing of serve.py's loop runs while a
request is slow. The watcher is a second thread that waits with the GIL released (a
timed lock acquire) and, every `period`, reads the worker's board -- the shared page
the serving thread already writes at each request's start and end; the request path
pays only the serving lock's release and acquire around each turn. Only when a request
has run longer than `delay` does it try the serving lock: the loop holds that lock at
all times except inside a connection's turn (`step`), so getting it means the serving
thread is in a request and stays out of the loop's tables until `hand_over` returns.
If the request ends meanwhile, the serving thread waits for the lock and then finds
the handed-over connections gone from its table and its FIFO: each connection is
served by exactly one worker.
"""

from __future__ import annotations

import _thread
import time

TYPE_CHECKING = False  # mypy only
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockactd.worker.board import Board

__all__ = ["Watcher"]


class Watcher:
    __slots__ = ("_board", "_delay", "_hand_over", "_period", "_serving", "_stop", "_stopped")

    def __init__(
        self,
        serving: _thread.LockType,
        board: Board,
        hand_over: Callable[[], None],
        delay: float,
        period: float,
    ) -> None:
        self._serving = serving
        self._board = board
        self._hand_over = hand_over  # called with `serving` held, the serving thread in a turn
        self._delay = delay
        self._period = period
        self._stop = _thread.allocate_lock()
        self._stop.acquire()  # released by stop(): the watcher's timed wait ends at once
        self._stopped = _thread.allocate_lock()

    def start(self) -> None:
        self._stopped.acquire()
        _thread.start_new_thread(self._run, ())

    def stop(self) -> None:
        """Stop the watcher and wait until it has (so no hand-over runs after this)."""
        self._stop.release()
        self._stopped.acquire()
        self._stopped.release()

    def check(self, now: float) -> bool:
        """One look: hand over if a request has run past the delay. True when it did."""
        _, started, busy = self._board.read()
        if not busy or now - started < self._delay:
            return False
        if not self._serving.acquire(False):
            return False  # the serving thread is in the loop: it serves what is ready itself
        try:
            self._hand_over()
        finally:
            self._serving.release()
        return True

    def _run(self) -> None:
        try:
            while not self._stop.acquire(True, self._period):
                try:
                    self.check(time.monotonic())
                except Exception:  # never let the watcher die silently; the loop serves on
                    from sockactd.log import get_logger

                    get_logger(__name__).exception("hand-over failed")
        finally:
            self._stopped.release()
