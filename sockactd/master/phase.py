"""The master's phases and the moves between them, as data.

Pure: no I/O, no clock. master.py asks `next_phase` before it acts, so an
event that makes no sense in the current phase is caught as a bug (IllegalMove)
or refused on purpose (REFUSED), never silently ignored. `PhaseTracker` holds
the master's current phase and answers the questions its parts ask of it
(reloads.py, health.py, status.py get the tracker, not the master).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sockactd.errors import IllegalMove
from sockactd.modes import ReloadMode

__all__ = [
    "AllGone",
    "AllReady",
    "BootGaveUp",
    "Phase",
    "PhaseEvent",
    "PhaseTracker",
    "ReloadFinished",
    "ReloadStarted",
    "StopRequested",
    "next_phase",
]


class Phase(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    RELOADING = "reloading"
    STOPPING = "stopping"
    EXITING = "exiting"


@dataclass(frozen=True, slots=True)
class AllReady:
    """Every initial worker reported ready."""


@dataclass(frozen=True, slots=True)
class BootGaveUp:
    """Initial workers kept failing to boot; the master gives up."""


@dataclass(frozen=True, slots=True)
class ReloadStarted:
    mode: ReloadMode


@dataclass(frozen=True, slots=True)
class ReloadFinished:
    ok: bool


@dataclass(frozen=True, slots=True)
class StopRequested:
    graceful: bool


@dataclass(frozen=True, slots=True)
class AllGone:
    """No worker is left."""


PhaseEvent = AllReady | BootGaveUp | ReloadStarted | ReloadFinished | StopRequested | AllGone

MOVES: Final[Mapping[tuple[Phase, type[PhaseEvent]], Phase]] = {
    (Phase.STARTING, AllReady): Phase.SERVING,
    (Phase.STARTING, BootGaveUp): Phase.STOPPING,
    (Phase.STARTING, StopRequested): Phase.STOPPING,
    # A standard reload resumes in a new image already reloading.
    (Phase.STARTING, ReloadStarted): Phase.RELOADING,
    (Phase.SERVING, ReloadStarted): Phase.RELOADING,
    (Phase.SERVING, StopRequested): Phase.STOPPING,
    (Phase.RELOADING, ReloadFinished): Phase.SERVING,
    (Phase.RELOADING, StopRequested): Phase.STOPPING,
    (Phase.STOPPING, StopRequested): Phase.STOPPING,  # a fast stop may follow a graceful one
    (Phase.STOPPING, AllGone): Phase.EXITING,
}


def next_phase(current: Phase, event: PhaseEvent) -> Phase:
    try:
        return MOVES[current, type(event)]
    except KeyError:
        raise IllegalMove(f"{type(event).__name__} is not a move from {current.value}") from None


class PhaseTracker:
    """The master's current phase; it changes only through `move` (the table above)."""

    __slots__ = ("current",)

    def __init__(self, current: Phase = Phase.STARTING) -> None:
        self.current = current

    def move(self, event: PhaseEvent) -> None:
        self.current = next_phase(self.current, event)

    def is_serving(self) -> bool:
        return self.current is Phase.SERVING

    def accepts_reloads(self) -> bool:
        return self.current not in (Phase.STOPPING, Phase.EXITING)

    def wants_workers(self) -> bool:
        return self.current in (Phase.STARTING, Phase.SERVING, Phase.RELOADING)
