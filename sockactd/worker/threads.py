"""--threads > 1: N handler threads fed by the loop thread (serve.py), and the line they keep.

The loop thread hands each readable connection over with `submit`. When a handler thread
is idle the connection goes to it through a FIFO queue at once; when all are busy it
waits in `waiting`, oldest first, and the next thread to finish takes it from there --
so the loop knows which ready connections have waited, and for how long. One that has
waited a hand-over delay, with nothing read from it since its last response, goes to the
lobby (`hand_over_late`, called by the loop thread), where the generation's next free
thread takes it. The delay is short (serve.py's `_LINE_DELAY`, 10 ms): under keep-alive a
worker holds the clients it happened to accept, and a worker that holds more of them than
another (12 and 4, say) would make its clients wait three times as long; what waits longer
than the delay waits in one line for the whole generation instead, as a new connection
per request does in the kernel's accept queue.

Oldest first across the generation: a connection in the lobby has waited a hand-over
delay in some worker's line before it went there, longer than any in this line that has
not waited as long. So a thread that finishes a turn takes the lobby's oldest connection
first (`from_lobby`), and this line's head only when the lobby is empty or the head has
waited the delay too (it could not go: something was read from it, or the lobby was
full). Without that, under overload no thread of any worker is ever idle, the lobby is
read only in rare idle moments, and what went there waits for seconds while the
connections that stayed in the lines cycle (issue 17: 176 of 200 clients unanswered).
A thread whose line is empty looks in the lobby too before it goes idle, when every
other thread of its worker is busy: the loop polls the lobby for idle threads only
between its own wake-ups, and meanwhile the next connection to become readable here
would take the idle thread ahead of everything in the lobby (with a 5 ms delay and no
such look, some of 200 clients went unanswered for 4 s while others cycled). With
another thread idle already, this worker keeps up and the loop polls the lobby for it;
the look is a poll(0), 7-9 us on this VM, too dear to pay on every hello-world request.

A lock orders park, close, dispatch and hand-over: a connection is in exactly one of
the loop's epoll (parked, EPOLLONESHOT), the queue, `waiting`, or a thread's hands.
Imported only with --threads > 1 (queue and threading stay off the start-up path).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque

TYPE_CHECKING = False  # mypy only
if TYPE_CHECKING:
    from collections.abc import Callable

    from sockactd.worker.connection import ConnectionHandler as Handler
    from sockactd.worker.connection import Next

__all__ = ["HandlerThreads"]


class HandlerThreads:
    def __init__(
        self,
        count: int,
        step: Callable[[Handler], Next],
        after_step: Callable[[Handler, Next], None],
        from_lobby: Callable[[], Handler | None] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.busy: set[int] = set()  # fds submitted and not parked again yet
        self.lock = threading.Lock()
        self.idle = count  # threads with no connection given to them (under the lock)
        self.waiting: deque[tuple[float, Handler]] = deque()  # (since, handler), oldest first
        self._step = step
        self._after_step = after_step  # park or close; called under the lock
        self._from_lobby = from_lobby  # the lobby's oldest connection, or None; under the lock
        self._delay = delay  # the hand-over delay: what has waited this long is in the lobby
        self._queue: queue.SimpleQueue[Handler | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"sockactd-handler-{n}", daemon=True)
            for n in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def quiet(self) -> bool:
        """True when no connection is in a thread's hands, queued or waiting."""
        return not self.busy

    def submit(self, handler: Handler) -> None:
        with self.lock:
            self.busy.add(handler.channel.fd)
            if not self.idle:
                self.waiting.append((time.monotonic(), handler))
                return
            self.idle -= 1
        self._queue.put(handler)

    def close_parked(self, handler: Handler, close: Callable[[Handler], None]) -> None:
        with self.lock:
            if handler.channel.fd not in self.busy:
                close(handler)

    def oldest_wait(self) -> float | None:
        """When the connection waiting longest began to wait (None: none waits)."""
        waiting = self.waiting
        return waiting[0][0] if waiting else None

    def hand_over_late(
        self, older_than: float, give_away: Callable[[Handler], bool]
    ) -> float | None:
        """Offer `give_away` each movable connection waiting since before `older_than`.

        `give_away` runs under the lock and returns False when the lobby is full: the
        rest stay in line, in order. Returns when the longest-waiting connection left that
        is not late yet began to wait (None: none is); what is left late could not go
        (something was read from it, or the lobby is full), and is no reason to look again
        before a thread frees up or the lobby's next look.
        """
        with self.lock:
            keep: deque[tuple[float, Handler]] = deque()
            full = False
            young: float | None = None
            for since, handler in self.waiting:
                if since > older_than:
                    if young is None:
                        young = since
                elif not full and handler.movable():
                    if give_away(handler):
                        self.busy.discard(handler.channel.fd)
                        continue
                    full = True
                keep.append((since, handler))
            self.waiting = keep
            return young

    def _work(self) -> None:
        handler = self._queue.get()
        while handler is not None:
            outcome = self._step(handler)
            with self.lock:
                self.busy.discard(handler.channel.fd)
                self._after_step(handler, outcome)
                following = self._next_nowait()
                if following is not None:
                    handler = following
                    continue
                self.idle += 1
            handler = self._queue.get()

    def _next_nowait(self) -> Handler | None:
        """The connection a thread serves after its turn, oldest first (lock held); None
        when this line is empty and so is the lobby, or another thread is idle already
        (the thread goes idle)."""
        waiting = self.waiting
        # an empty line with another thread idle: this worker is short of connections
        look = time.monotonic() - waiting[0][0] < self._delay if waiting else not self.idle
        if look and self._from_lobby is not None:
            adopted = self._from_lobby()
            if adopted is not None:
                self.busy.add(adopted.channel.fd)
                return adopted
        return waiting.popleft()[1] if waiting else None

    def shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
