"""Every unit test closes what it opened: a test that leaves a file descriptor open fails.

The .deb build's %check runs these tests in one process; descriptors left open pile up
there (one closed-fd case once met a number it took for free). The check compares the
numbers in /proc/self/fd before and after each test, its function-scoped fixtures
included (wider-scoped fixtures are set up before this one and outlive it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def _describe(fd: int) -> str:
    try:
        return f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}"
    except OSError:
        return f"{fd} (closed meanwhile)"


@pytest.fixture(autouse=True)
def _no_fd_left_open() -> Iterator[None]:
    before = _open_fds()
    yield
    left = sorted(_open_fds() - before)
    if left:  # the listing's own fd is gone by now: whatever is left is the test's
        pytest.fail(
            "the test left file descriptors open: " + ", ".join(map(_describe, left)),
            pytrace=False,
        )
