"""The master's phase table: every legal move, and illegal ones caught as bugs."""

from __future__ import annotations

import pytest

from sockactd.errors import IllegalMove
from sockactd.master.phase import (
    AllGone,
    AllReady,
    BootGaveUp,
    Phase,
    PhaseEvent,
    ReloadFinished,
    ReloadStarted,
    StopRequested,
    next_phase,
)
from sockactd.modes import ReloadMode


@pytest.mark.parametrize(
    ("phase", "event", "expected"),
    [
        (Phase.STARTING, AllReady(), Phase.SERVING),
        (Phase.STARTING, BootGaveUp(), Phase.STOPPING),
        (Phase.STARTING, StopRequested(graceful=True), Phase.STOPPING),
        (Phase.STARTING, ReloadStarted(ReloadMode.STANDARD), Phase.RELOADING),
        (Phase.SERVING, ReloadStarted(ReloadMode.CHAIN), Phase.RELOADING),
        (Phase.SERVING, StopRequested(graceful=False), Phase.STOPPING),
        (Phase.RELOADING, ReloadFinished(ok=True), Phase.SERVING),
        (Phase.RELOADING, ReloadFinished(ok=False), Phase.SERVING),
        (Phase.RELOADING, StopRequested(graceful=True), Phase.STOPPING),
        (Phase.STOPPING, StopRequested(graceful=False), Phase.STOPPING),
        (Phase.STOPPING, AllGone(), Phase.EXITING),
    ],
)
def test_moves(phase: Phase, event: PhaseEvent, expected: Phase) -> None:
    assert next_phase(phase, event) is expected


@pytest.mark.parametrize(
    ("phase", "event"),
    [
        (Phase.SERVING, AllReady()),
        (Phase.RELOADING, ReloadStarted(ReloadMode.CHAIN)),  # reloads are queued, never nested
        (Phase.STOPPING, ReloadStarted(ReloadMode.CHAIN)),
        (Phase.SERVING, AllGone()),
        (Phase.EXITING, StopRequested(graceful=True)),
    ],
)
def test_illegal_moves_raise(phase: Phase, event: PhaseEvent) -> None:
    with pytest.raises(IllegalMove, match=phase.value):
        next_phase(phase, event)
