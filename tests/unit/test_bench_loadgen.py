"""bench/loadgen.py analysis: pure functions, table tests."""

from __future__ import annotations

import pytest

from bench.loadgen import (
    Kind,
    Outcome,
    classify,
    failures,
    gap_span,
    longest_gap,
    lowest_window_rate,
    p99,
    time_to_new,
)

OK_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n2 123 1\n"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (OK_BODY, (Kind.OK, "2")),
        (b"HTTP/1.1 200 OK\r\n\r\n", (Kind.OK, "")),
        (b"HTTP/1.1 502 Bad Gateway\r\n\r\nno", (Kind.HTTP_5XX, "")),
        (b"HTTP/1.1 404 Not Found\r\n\r\n", (Kind.OTHER, "")),
        (b"", (Kind.RESET, "")),  # closed without a byte: the worker died mid-request
        (b"HTTP/1.1 200 OK\r\nContent-", (Kind.OTHER, "")),  # truncated head
        (b"garbage\r\n\r\n", (Kind.OTHER, "")),
    ],
)
def test_classify(raw: bytes, expected: tuple[Kind, str]) -> None:
    assert classify(raw) == expected


def ok(end: float, version: str = "1", start: float | None = None) -> Outcome:
    return Outcome(end - 0.01 if start is None else start, end, Kind.OK, version)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([ok(1.0), ok(5.5), ok(6.0, "2"), ok(7.0, "2")], 0.5),  # last old answer at 5.5
        ([ok(1.0), ok(6.0, "2"), ok(6.5), ok(7.0, "2")], 1.5),  # an old worker answered late
        ([ok(1.0), ok(6.0, "2")], 0.0),  # no old answer after the trigger
        ([ok(1.0), ok(6.0, "2"), ok(7.0)], None),  # old code is still serving at the end
        ([ok(1.0)], None),  # new code never answered (broken reload)
        ([], None),
    ],
)
def test_time_to_new(outcomes: list[Outcome], expected: float | None) -> None:
    assert time_to_new(outcomes, trigger=5.0, new="2") == (
        None if expected is None else pytest.approx(expected)
    )


def test_failures_counts_every_kind_but_ok() -> None:
    outcomes = [ok(1.0), Outcome(1, 2, Kind.REFUSED), Outcome(1, 2, Kind.REFUSED)]
    outcomes.append(Outcome(1, 2, Kind.HTTP_5XX))
    assert failures(outcomes) == {
        Kind.REFUSED: 2,
        Kind.RESET: 0,
        Kind.TIMEOUT: 0,
        Kind.HTTP_5XX: 1,
        Kind.OTHER: 0,
    }


@pytest.mark.parametrize(
    ("ends", "start", "stop", "lowest"),
    [
        ([0.1 * i for i in range(1, 40)], 0.0, 4.0, 9),  # 10/s, one window edge is open
        ([0.5, 1.0, 1.5, 3.5], 0.0, 4.0, 0),  # nothing in [2.0, 3.0]
        ([], 0.0, 0.5, 0),  # run shorter than one window
    ],
)
def test_lowest_window_rate(ends: list[float], start: float, stop: float, lowest: int) -> None:
    assert lowest_window_rate([ok(e) for e in ends], start, stop) == lowest


@pytest.mark.parametrize(
    ("ends", "expected"),
    [
        ([1.0, 2.0, 2.5], 2.0),  # from 2.5 to the end at 4.5
        ([0.5, 3.5, 4.0], 3.0),
        ([], 4.0),
    ],
)
def test_longest_gap_counts_only_successes(ends: list[float], expected: float) -> None:
    outcomes = [ok(e) for e in ends] + [Outcome(2.9, 3.0, Kind.REFUSED)]
    assert longest_gap(outcomes, 0.5, 4.5) == pytest.approx(expected)


def test_gap_span_says_where_the_longest_gap_was() -> None:
    outcomes = [ok(e) for e in (1.0, 1.2, 3.0, 3.1)] + [Outcome(2.0, 2.1, Kind.RESET)]
    assert gap_span(outcomes, 0.5, 3.5) == pytest.approx((1.2, 3.0))
    assert gap_span([], 0.5, 3.5) == pytest.approx((0.5, 3.5))


def test_p99_uses_requests_started_in_the_window_failures_included() -> None:
    fast = [Outcome(1.0 + i / 1000, 1.0 + i / 1000 + 0.001, Kind.OK) for i in range(99)]
    slow = Outcome(1.5, 3.5, Kind.TIMEOUT)
    assert p99([*fast, slow], 1.0, 2.0) == pytest.approx(2.0)
    assert p99(fast, 1.0, 2.0) == pytest.approx(0.001)
    assert p99(fast, 5.0, 6.0) is None
