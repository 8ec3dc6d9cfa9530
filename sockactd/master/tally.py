"""What the master counts over its own lifetime: worker exits by reason, reloads.

The master owns these numbers, so they survive worker restarts and reloads and
reset only when the master does. Nothing here decides anything or touches a
process: master.py and reloads.py report events, metrics.py and stats.py read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sockactd.modes import ReloadMode
from sockactd.pool import ExitReason, Worker, WorkerState
from sockactd.worker.board import Board, Counts

__all__ = ["OUTCOMES", "Tally", "exit_reason"]

OUTCOMES = ("done", "aborted")  # how a reload ended, as counted (and labelled in metrics)


def exit_reason(worker: Worker, state: WorkerState, stopping: bool) -> ExitReason:
    """Why `worker`, which was in `state` when it exited, is gone."""
    if worker.exit_reason is not None:
        return worker.exit_reason
    if state is WorkerState.BOOTING:
        return ExitReason.BOOT_FAILURE
    if stopping:
        return ExitReason.STOP
    if state is WorkerState.DRAINING:
        return ExitReason.RELOAD
    return ExitReason.CRASH


class Tally:
    def __init__(self) -> None:
        self.exits: Counter[ExitReason] = Counter()
        self.by_number: dict[int, Counter[ExitReason]] = {}  # worker number -> exits by reason
        self.requests = Counts()  # of workers that exited; live ones are read from their boards
        self.reloads: Counter[tuple[ReloadMode, str]] = Counter()  # (mode, one of OUTCOMES)
        self.last_reload_seconds: float | None = None
        self.last_success_wall: float | None = None  # time.time() of the last reload that worked
        self._reload_began = 0.0
        self._resumed = False

    # --- events ----------------------------------------------------------------
    def worker_exited(self, worker: Worker, state: WorkerState, stopping: bool) -> ExitReason:
        reason = exit_reason(worker, state, stopping)
        self.exits[reason] += 1
        if state is not WorkerState.BOOTING:  # uWSGI's per-worker respawn/harakiri counts
            per_number = self.by_number.setdefault(worker.number, Counter())
            per_number[reason] += 1
        return reason

    def fold(self, board: Board) -> None:
        """Keep a leaving worker's request counts (its board is about to be closed)."""
        self.requests.add(board.counts())

    def reload_started(self, now: float) -> None:
        if self._resumed:  # a standard reload's second half: it began in the earlier image
            self._resumed = False
            return
        self._reload_began = now

    def reload_finished(self, mode: ReloadMode, ok: bool, now: float, wall: float) -> None:
        self.reloads[mode, OUTCOMES[0] if ok else OUTCOMES[1]] += 1
        self.last_reload_seconds = now - self._reload_began
        if ok:
            self.last_success_wall = wall

    # --- across a standard reload (the master's execve) --------------------------
    def to_json(self) -> dict[str, object]:
        return {
            "exits": {reason.value: n for reason, n in self.exits.items()},
            "requests": self.requests.to_json(),
            "reloads": [[mode.value, outcome, n] for (mode, outcome), n in self.reloads.items()],
            "last_reload_seconds": self.last_reload_seconds,
            "last_success_wall": self.last_success_wall,
            "reload_began": self._reload_began,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tally:
        """The counts an earlier image of this master handed over; a fresh Tally if unreadable."""
        tally = cls()
        try:
            tally.exits.update({ExitReason(k): int(n) for k, n in data["exits"].items()})
            tally.requests = Counts.from_json(data["requests"])
            for name, outcome, n in data["reloads"]:
                # a mode or outcome this image does not know has nowhere to be shown: dropped
                if name in ReloadMode.names() and outcome in OUTCOMES:
                    tally.reloads[ReloadMode.parse(name), outcome] += int(n)
            tally.last_reload_seconds = data["last_reload_seconds"]
            tally.last_success_wall = data["last_success_wall"]
            tally._reload_began = float(data["reload_began"])
            tally._resumed = True
        except (KeyError, TypeError, ValueError):
            return cls()
        return tally
