"""Trigger files: the interface the master's selector loop sees, and burst coalescing.

A rule is (file path, reload mode). A source reports *that* a trigger file
changed; `Debouncer` turns a burst of changes into ONE reload per mode, fired
once the burst has been quiet for `quiet` seconds (or has lasted `max_burst`,
so a file touched non-stop still reloads). Nothing here blocks or reads a clock:
the caller passes `now` (time.monotonic()).

This module knows nothing about inotify (inotify.py does; opener.py picks it) and never
starts a reload: the master turns each due mode into a reload request.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from sockactd.modes import ReloadMode

if TYPE_CHECKING:
    from sockactd.config.model import Config

__all__ = [
    "Debouncer",
    "Rule",
    "TriggerSource",
    "rules_from_config",
]

Rule = tuple[str, ReloadMode]  # (trigger file, the mode its change asks for)
Key = TypeVar("Key", bound=Hashable)


class TriggerSource(Protocol):
    """What the master's selector loop drives; no method blocks."""

    def fileno(self) -> int:
        """Register this for reading in the selector."""

    def on_readable(self, now: float) -> None:
        """Read and classify pending events (the selector said the fd is readable)."""

    def due(self, now: float) -> list[ReloadMode]:
        """Reload modes whose burst of changes is over; each is returned once."""

    def next_deadline(self) -> float | None:
        """When `due` may next return something (monotonic time), for the selector timeout."""

    def close(self) -> None: ...


@dataclass
class _Burst:
    first: float
    last: float


@dataclass
class Debouncer(Generic[Key]):
    """Coalesces change notices per key (a mode); pure, the clock is the caller's."""

    quiet: float = 0.2
    max_burst: float = 5.0
    _bursts: dict[Key, _Burst] = field(default_factory=dict)

    def note(self, mode: Key, now: float) -> None:
        burst = self._bursts.get(mode)
        if burst is None:
            self._bursts[mode] = _Burst(first=now, last=now)
        else:
            burst.last = max(burst.last, now)

    def due(self, now: float) -> list[Key]:
        ready = [mode for mode, burst in self._bursts.items() if self._deadline(burst) <= now]
        for mode in ready:
            del self._bursts[mode]
        return ready

    def next_deadline(self) -> float | None:
        return min((self._deadline(burst) for burst in self._bursts.values()), default=None)

    def _deadline(self, burst: _Burst) -> float:
        return min(burst.last + self.quiet, burst.first + self.max_burst)


def rules_from_config(config: Config) -> list[Rule]:
    """(path, mode) for every file of every mode's trigger setting (touch-*reload), by mode."""
    return [(path, mode) for mode in ReloadMode.members() for path in config.trigger_files(mode)]
