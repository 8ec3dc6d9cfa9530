"""Admission of new connections: the cap on parked connections, and a pause when fds run out.

Rule 1: a worker keeps at most `worker-connections` connections parked. To park one
        more, or after accept() failed for lack of fds, it closes one parked connection
        -- one whose loss costs least (`RoomOrder`): first the one that has waited
        longest for its first answer (a client that connected and sent no whole request;
        a flood is made of these), then a keep-alive connection idle for at least half
        its keepalive-timeout, the longest idle first. Never one whose next request has
        already arrived unread (it is owed an answer), never one being served, and never
        a keep-alive connection its client used more recently than that: closing it
        races the client's next request, which may be on its way (an active client, not
        an abandoned one). When none may go, none does, and accepts pause (as below):
        the new connections wait in the kernel's accept queue, or another worker takes
        them (one taken from the lobby is ours already: it parks over the cap).
Rule 2: accept() failing for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) is
        neither the client's fault nor a reason to die. The worker makes room (Rule 1)
        and stops polling the listeners for a back-off (50 ms, doubling to 0.5 s while
        the failures go on): listeners are level-triggered, so polling one that cannot
        be accepted from would spin.
Rule 3: both are said at most once per `LOG_INTERVAL`, with a count of what was not
        said; and saying it needs no free fd: a spare one (/dev/null) is given back
        just before the warning (the first record imports `logging`, which opens
        files) and taken again after.

This module decides and speaks; serve.py owns the epoll and the connections.
"""

from __future__ import annotations

import errno
import os

from sockactd.log import get_logger

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections import deque  # typeshed knows it only as collections'
    from collections.abc import Callable, Mapping
    from typing import Final

    from sockactd.worker.connection import ConnectionHandler as Handler
else:
    from _collections import deque  # the same class, without collections' own imports

__all__ = ["EXHAUSTED", "LOG_INTERVAL", "AcceptPause", "RoomOrder"]

log = get_logger(__name__)

EXHAUSTED: Final = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
LOG_INTERVAL: Final = 10.0
_FIRST_DELAY: Final = 0.05
_MAX_DELAY: Final = 0.5
# Making room passes over at most this many connections that may not go (owed an answer,
# or being served) before it gives up.
_ROOM_TRIES: Final = 8


class AcceptPause:
    """When to poll the listeners again after resources ran out, and the one warning."""

    __slots__ = ("_delay", "_last_end", "_said_at", "_spare", "_unsaid", "resume_at")

    def __init__(self) -> None:
        self.resume_at = 0.0  # 0: not paused
        self._last_end = 0.0  # when the last pause ended
        self._delay = _FIRST_DELAY
        self._spare = _open_spare()
        self._said_at: dict[str, float] = {}
        self._unsaid: dict[str, int] = {}

    def exhausted(self, exc: OSError, now: float, parked: int) -> float:
        """Record a failed accept; return when the listeners may be polled again."""
        self._back_off(now)
        self.say(
            "exhausted",
            now,
            "worker %d cannot accept: %s (%d connections parked); pausing accepts for up "
            "to %gs, making room where a parked connection may go (see worker-connections)",
            os.getpid(),
            exc.strerror or exc,
            parked,
            _MAX_DELAY,
        )
        return self.resume_at

    def full(self, now: float, parked: int) -> float:
        """At the cap with no connection that may go: pause accepts as for `exhausted`."""
        self._back_off(now)
        self.say(
            "full",
            now,
            "worker %d holds %d parked connections (worker-connections) and none may go "
            "yet (all answered and in use); pausing accepts for up to %gs",
            os.getpid(),
            parked,
            _MAX_DELAY,
        )
        return self.resume_at

    def _back_off(self, now: float) -> None:
        if now > self._last_end + _MAX_DELAY:
            self._delay = _FIRST_DELAY  # the last pause is long over: start small again
        delay = self._delay
        self._delay = min(delay * 2, _MAX_DELAY)
        self.resume_at = self._last_end = now + delay

    def resumed(self) -> None:
        self.resume_at = 0.0

    def say(self, key: str, now: float, msg: str, *args: object) -> None:
        """Warn, unless the same `key` was said less than LOG_INTERVAL ago (then count it)."""
        if now - self._said_at.get(key, -LOG_INTERVAL) < LOG_INTERVAL:
            self._unsaid[key] = self._unsaid.get(key, 0) + 1
            return
        self._said_at[key] = now
        unsaid = self._unsaid.pop(key, 0)
        if unsaid:
            msg += f" ({unsaid} more since the last such warning)"
        if self._spare >= 0:
            os.close(self._spare)
            self._spare = -1
        try:
            log.warning(msg, *args)
        finally:
            self._spare = _open_spare()

    def close(self) -> None:
        if self._spare >= 0:
            os.close(self._spare)
            self._spare = -1


class RoomOrder:
    """Which parked connection goes when the worker must make room (Rule 1), cheaply.

    `unanswered`: connections parked since they were accepted and not answered yet, in
    the order they parked (the oldest first), each with its `parked_at` then; an entry
    whose connection was answered since (its `parked_at` moved on) or closed is dropped
    when met. `reusable`: answered keep-alive connections idle for at least
    `reuse_after`, the longest idle first, made from the parked table when it is needed
    and empty (at most every `_FIRST_DELAY`), so serving a request costs this nothing.
    serve.py calls `parked_new` and `closed`; it owns the table and closes what `pick`
    names.
    """

    __slots__ = ("_built_at", "_reusable", "_unanswered", "reuse_after")

    def __init__(self, keepalive_timeout: float) -> None:
        self.reuse_after = keepalive_timeout / 2
        self._unanswered: dict[int, tuple[float, Handler]] = {}
        self._reusable: deque[tuple[float, int]] = deque()  # (parked_at, fd): no references
        self._built_at = float("-inf")

    def parked_new(self, handler: Handler) -> None:
        """A connection parks for the first time (its first turn may have answered it)."""
        if not handler.between_requests():
            self._unanswered[handler.channel.fd] = (handler.parked_at, handler)

    def closed(self, fd: int) -> None:
        self._unanswered.pop(fd, None)

    def pick(
        self, conns: Mapping[int, Handler], now: float, kept: Callable[[Handler], bool]
    ) -> Handler | None:
        """The parked connection to close to make room; None when none may go.

        `kept(handler)` is True for one that must stay although the order names it (its
        request arrived unread, or it is being served); at most `_ROOM_TRIES` are passed.
        """
        tries = 0
        gone: list[int] = []
        chosen: Handler | None = None
        for fd, (since, handler) in self._unanswered.items():
            if conns.get(fd) is not handler or handler.parked_at != since:
                gone.append(fd)  # answered since (or closed): not this order's any more
            elif not kept(handler):
                chosen = handler
                break
            else:
                tries += 1
                if tries >= _ROOM_TRIES:
                    break
        for fd in gone:
            del self._unanswered[fd]
        if chosen is not None or tries >= _ROOM_TRIES:
            return chosen
        return self._pick_reusable(conns, now, kept, tries)

    def _pick_reusable(
        self,
        conns: Mapping[int, Handler],
        now: float,
        kept: Callable[[Handler], bool],
        tries: int,
    ) -> Handler | None:
        reusable = self._reusable
        if not reusable and now >= self._built_at + _FIRST_DELAY:
            self._built_at = now
            idle_since = now - self.reuse_after
            found = [
                (handler.parked_at, fd)
                for fd, handler in conns.items()
                if handler.parked_at <= idle_since and handler.between_requests()
            ]
            found.sort()
            reusable.extend(found)
        while reusable and tries < _ROOM_TRIES:
            since, fd = reusable.popleft()
            handler = conns.get(fd)
            if handler is None or handler.parked_at != since:
                continue  # closed, or used again since the list was made
            if not handler.between_requests():
                continue  # a request began arriving on it: in use again
            if not kept(handler):
                return handler
            tries += 1
        return None


def _open_spare() -> int:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1  # out already: log.py still writes without logging (its fallback)
