"""What the master counts over its own lifetime: worker exits by reason, reloads.

The master owns these numbers, so they survive worker restarts and reloads and
reset only when the master does. Nothing here decides anything or touches a
process: master.py and reloads.py report events, metrics.py and stats.py read.
"""

from __future__ import annotations

import enum
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sockactd.master.pool import Worker, WorkerState

__all__ = ["ExitReason", "Tally", "exit_reason"]


class ExitReason(enum.Enum):
    """Why a worker left (the `reason` label of sockactd_worker_exits_total)."""

    CRASH = "crash"  # died while serving, unasked
    BOOT_FAILURE = "boot-failure"  # died or was killed before it reported ready
    HARAKIRI = "harakiri"
    MAX_REQUESTS = "max-requests"
    LIFETIME = "max-worker-lifetime"
    MEMORY = "memory"  # reload-on-rss: stopped itself, replaced
    MEMORY_KILL = "memory-kill"  # evil-reload-on-rss: killed by the master
    RELOAD = "reload"
    SCALE_DOWN = "scale-down"
    STOP = "stop"  # the server is stopping


def exit_reason(worker: Worker, state: WorkerState, stopping: bool) -> ExitReason:
    """Why `worker`, which was in `state` when it exited, is gone."""
    from sockactd.master.pool import WorkerState

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

    def worker_exited(self, worker: Worker, state: WorkerState, stopping: bool) -> ExitReason:
        reason = exit_reason(worker, state, stopping)
        self.exits[reason] += 1
        return reason
