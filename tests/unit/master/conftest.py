"""Closes what the fakes of fakes.py opened, after each test of the master's wing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.master.fakes import BOARDS, LOOPS


@pytest.fixture(autouse=True)
def _close_what_the_fakes_opened() -> Iterator[None]:
    yield
    while LOOPS:
        LOOPS.pop().close()
    while BOARDS:
        board = BOARDS.pop()
        if not board._map.closed:  # the pool closes the boards of workers it forgot
            board.close()
