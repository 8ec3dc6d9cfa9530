"""worker/admission.py: the accept back-off, the rate-limited warning and which connection
makes room, on a given clock."""

from __future__ import annotations

import errno
import logging
from types import SimpleNamespace
from typing import Any, cast

import pytest

from sockactd.worker.admission import LOG_INTERVAL, AcceptPause, RoomOrder

EMFILE = OSError(errno.EMFILE, "Too many open files")


def test_the_pause_doubles_while_accepts_keep_failing_and_starts_small_again() -> None:
    pause = AcceptPause()
    now, delays = 100.0, []
    for _ in range(7):
        resume = pause.exhausted(EMFILE, now, parked=10)
        delays.append(round(resume - now, 3))
        pause.resumed()
        now = resume  # failing again as soon as accepts resume
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    later = now + 5.0
    assert pause.exhausted(EMFILE, later, parked=10) - later == pytest.approx(0.05)
    pause.close()


def test_the_warning_is_said_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pause = AcceptPause()
    with caplog.at_level(logging.WARNING):
        for n in range(100):
            pause.say("key", 10.0 + n * 0.01, "out of %s", "fds")
        pause.say("key", 10.0 + LOG_INTERVAL, "out of %s", "fds")
    assert [r.getMessage() for r in caplog.records] == [
        "out of fds",
        "out of fds (99 more since the last such warning)",
    ]
    pause.close()


class _Conn:
    """What RoomOrder reads of a parked connection."""

    def __init__(self, fd: int, parked_at: float, answered: bool = False) -> None:
        self.channel = SimpleNamespace(fd=fd)
        self.parked_at = parked_at
        self.answered = answered

    def between_requests(self) -> bool:
        return self.answered

    def answer(self, now: float) -> None:
        self.parked_at, self.answered = now, True


def _parked(order: RoomOrder, *conns: _Conn) -> dict[int, Any]:
    table: dict[int, Any] = {}
    for conn in conns:
        table[conn.channel.fd] = conn
        order.parked_new(cast(Any, conn))
    return table


def _none_kept(handler: object) -> bool:
    return False


def test_room_is_made_from_the_unanswered_first_however_long_a_keep_alive_one_idled() -> None:
    order = RoomOrder(keepalive_timeout=4.0)  # keep-alive ones go after 2 s idle
    client = _Conn(3, parked_at=0.0)
    conns = _parked(order, client)
    client.answer(1.0)
    flood = [_Conn(fd, parked_at=50.0) for fd in (4, 5)]
    conns |= _parked(order, *flood)
    assert order.pick(conns, 50.1, _none_kept) is flood[0]
    del conns[4]
    order.closed(4)
    assert order.pick(conns, 50.1, _none_kept) is flood[1]
    del conns[5]
    order.closed(5)
    assert order.pick(conns, 50.1, _none_kept) is client  # idle 49 s: now it may go


def test_a_keep_alive_connection_used_within_half_its_timeout_stays() -> None:
    order = RoomOrder(keepalive_timeout=4.0)
    a, b, c = _Conn(3, parked_at=0.0), _Conn(4, parked_at=0.0), _Conn(5, parked_at=0.0)
    conns = _parked(order, a, b, c)
    a.answer(10.0)
    b.answer(10.1)
    c.answer(10.5)
    assert order.pick(conns, 11.9, _none_kept) is None  # all used under 2 s ago
    assert order.pick(conns, 12.2, _none_kept) is a  # idle longest, and over 2 s now
    del conns[3]
    order.closed(3)
    b.answer(12.3)  # used again since it was found idle: it stays
    assert order.pick(conns, 12.4, _none_kept) is None
    assert order.pick(conns, 12.6, _none_kept) is c


def test_making_room_passes_over_what_must_stay_a_bounded_number_of_times() -> None:
    order = RoomOrder(keepalive_timeout=4.0)
    owed = [_Conn(fd, parked_at=float(fd)) for fd in range(3, 13)]  # 10, all with a request
    late = _Conn(13, parked_at=20.0)
    conns = _parked(order, *owed, late)
    kept = {conn.channel.fd for conn in owed}
    assert order.pick(conns, 30.0, lambda h: h.channel.fd in kept) is None  # past 8 tries
    kept -= {3, 4, 5}
    assert order.pick(conns, 30.0, lambda h: h.channel.fd in kept) is owed[0]
