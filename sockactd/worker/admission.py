"""Admission of new connections: the cap on parked connections, and a pause when fds run out.

Rule 1: a worker keeps at most `worker-connections` connections parked. Accepting
        one more first closes its oldest idle one (the one parked longest), never
        one whose next request has already arrived unread (that one is owed an answer).
Rule 2: accept() failing for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) is
        neither the client's fault nor a reason to die. The worker closes its oldest
        idle connection and stops polling the listeners for a back-off (50 ms,
        doubling to 0.5 s while the failures go on): listeners are level-triggered,
        so polling one that cannot be accepted from would spin.
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
    from typing import Final

__all__ = ["EXHAUSTED", "LOG_INTERVAL", "AcceptPause"]

log = get_logger(__name__)

EXHAUSTED: Final = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
LOG_INTERVAL: Final = 10.0
_FIRST_DELAY: Final = 0.05
_MAX_DELAY: Final = 0.5


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
        if now > self._last_end + _MAX_DELAY:
            self._delay = _FIRST_DELAY  # the last pause is long over: start small again
        delay = self._delay
        self._delay = min(delay * 2, _MAX_DELAY)
        self.resume_at = self._last_end = now + delay
        self.say(
            "exhausted",
            now,
            "worker %d cannot accept: %s (%d connections parked); closing the oldest idle "
            "one and pausing accepts for up to %gs",
            os.getpid(),
            exc.strerror or exc,
            parked,
            _MAX_DELAY,
        )
        return self.resume_at

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


def _open_spare() -> int:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1  # out already: log.py still writes without logging (its fallback)
