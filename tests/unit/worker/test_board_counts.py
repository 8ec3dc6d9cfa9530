"""The board's metrics counters: what one request adds, and boards from older versions."""

from __future__ import annotations

import os
from bisect import bisect_left

import pytest

from sockactd.worker.board import DURATION_BUCKETS, SIZE, STATUS_CLASSES, Board, Counts


class Done:
    def __init__(self, code: int, uwsgi: bool = False, sent: int = 0) -> None:
        self.code, self.uwsgi, self.sent = code, uwsgi, sent


@pytest.fixture(params=[True, False], ids=["single-threaded", "threads"])
def board(request: pytest.FixtureRequest) -> Board:
    board = Board.create()
    if request.param:
        board.single_threaded()
    board.start_counting()
    yield board
    board.close()


@pytest.mark.parametrize(
    ("code", "uwsgi", "slot"),
    [
        (200, False, STATUS_CLASSES.index("2xx")),
        (404, False, STATUS_CLASSES.index("4xx")),
        (503, True, len(STATUS_CLASSES) + STATUS_CLASSES.index("5xx")),
        (101, False, STATUS_CLASSES.index("1xx")),
        (0, False, STATUS_CLASSES.index("other")),  # the client left before a status went out
        (999, True, len(STATUS_CLASSES)),
    ],
)
def test_a_request_counts_once_by_protocol_and_status_class(
    board: Board, code: int, uwsgi: bool, slot: int
) -> None:
    board.request_started()
    board.request_finished(Done(code, uwsgi, sent=123))
    assert board.counts().total() == 0  # the master sees them from the next publish on
    board.publish_counts()
    counts = board.counts()
    assert [i for i, n in enumerate(counts.requests) if n] == [slot]
    assert counts.total() == 1 == sum(counts.buckets)
    assert 0 < counts.duration_ns < 5_000_000_000
    # in the bucket its duration belongs to (a loaded machine may take over 5 ms)
    assert counts.buckets.index(1) == bisect_left(DURATION_BUCKETS, counts.duration_ns / 1e9)
    assert counts.tx == 123
    assert board.read() == (1, 0.0, 0)


def test_not_counting_leaves_the_counters_alone() -> None:
    board = Board.create()
    board.single_threaded()
    board.request_started()
    board.request_finished(Done(200, sent=5))
    board.publish_counts()
    assert board.counts().total() == 0
    assert board.read()[0] == 1
    board.close()


def test_counts_add_and_survive_json() -> None:
    a = Counts(tuple(range(len(Counts().to_json()))))
    b = Counts.from_json(a.to_json())
    b.add(a)
    assert b.to_json() == [2 * n for n in a.to_json()]
    assert len(b.buckets) == len(DURATION_BUCKETS) + 1
    with pytest.raises(ValueError, match="counters"):
        Counts.from_json([1, 2, 3])


def test_a_smaller_board_from_an_older_version_is_grown_not_misread() -> None:
    fd = os.memfd_create("old-board", os.MFD_CLOEXEC)
    os.ftruncate(fd, 24)  # served, started, busy: the layout before the counters
    os.pwrite(fd, (7).to_bytes(8, "little"), 0)
    board = Board(fd)
    try:
        assert os.fstat(fd).st_size == SIZE
        assert board.read() == (7, 0.0, 0)
        assert board.counts().total() == 0
    finally:
        board.close()
