"""Every unit test closes what it opened: a test that leaves a file descriptor open fails.

The .deb build's %check runs these tests in one process; descriptors left open pile up
there (one closed-fd case once met a number it took for free). The check compares the
numbers in /proc/self/fd before and after each test, its function-scoped fixtures
included (wider-scoped fixtures are set up before this one and outlive it).

It is the only conftest.py under tests/unit: the RPM build's %check imports it as
`conftest` (--import-mode=append, tests/unit has no __init__.py), and a second one
there would be a second module of that name ("import file mismatch";
test_unit_test_names.py). So it also closes what the master wing's fakes opened
(tests/unit/master/fakes.py), before it counts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.unit.master.fakes import BOARDS, LOOPS


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def _close_what_the_fakes_opened() -> None:
    while LOOPS:
        LOOPS.pop().close()
    while BOARDS:
        board = BOARDS.pop()
        if not board._map.closed:  # the pool closes the boards of workers it forgot
            board.close()


def _describe(fd: int) -> str:
    try:
        return f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}"
    except OSError:
        return f"{fd} (closed meanwhile)"


@pytest.fixture(autouse=True)
def _no_fd_left_open() -> Iterator[None]:
    before = _open_fds()
    yield
    _close_what_the_fakes_opened()
    left = sorted(_open_fds() - before)
    if left:  # the listing's own fd is gone by now: whatever is left is the test's
        pytest.fail(
            "the test left file descriptors open: " + ", ".join(map(_describe, left)),
            pytrace=False,
        )
