"""The per-worker scoreboard the master reads for harakiri, max-requests and status."""

from __future__ import annotations

import threading

from sockactd.worker.board import Board


def test_counts_requests_and_busy_across_threads() -> None:
    board = Board.create()
    try:

        def hammer() -> None:
            for _ in range(2000):
                board.request_started()
                board.request_finished()

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert board.read() == (8000, 0.0, 0)
    finally:
        board.close()


def test_start_time_follows_the_requests_still_in_progress() -> None:
    board = Board.create()
    try:
        board.request_started()
        first = board.read()[1]
        done = threading.Event()

        def newer_request_finishes() -> None:
            board.request_started()
            board.request_finished()
            done.set()

        thread = threading.Thread(target=newer_request_finishes)
        thread.start()
        thread.join()
        assert done.is_set()
        assert board.read()[1:] == (first, 1)  # the older, still running request is kept
        board.request_finished()
        assert board.read() == (2, 0.0, 0)
    finally:
        board.close()


def test_single_threaded_board_reads_like_the_locked_one() -> None:
    boards = [Board.create(), Board.create()]
    boards[1].single_threaded()
    try:
        seen: list[list[tuple[int, bool, int]]] = [[], []]
        for board, out in zip(boards, seen, strict=True):
            for _ in range(3):
                board.request_started()
                served, started, busy = board.read()
                out.append((served, started > 0.0, busy))
                board.request_finished()
                served, started, busy = board.read()
                out.append((served, started > 0.0, busy))
        assert seen[0] == seen[1] == [
            (0, True, 1), (1, False, 0), (1, True, 1), (2, False, 0), (2, True, 1), (3, False, 0)
        ]  # fmt: skip
    finally:
        for board in boards:
            board.close()
