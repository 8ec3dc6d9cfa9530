"""worker/admission.py: the accept back-off and the rate-limited warning, on a given clock."""

from __future__ import annotations

import errno
import logging

import pytest

from sockactd.worker.admission import LOG_INTERVAL, AcceptPause

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
