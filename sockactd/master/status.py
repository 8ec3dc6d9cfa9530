"""What the master says about itself: the STATUS= line and `sockactctl status` data.

Read-only views over the master's state; nothing here changes it. It is handed
the phase, the pool, the reload queue (as `ReloadsView`) and, for the status
data, the clock's now and the wall time the master started.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Protocol

from sockactd.control.protocol import (
    LastReloadData,
    ReloadProgressData,
    StatusData,
    WorkerStatusData,
)
from sockactd.master.phase import Phase
from sockactd.pool import WorkerPool, WorkerState

if TYPE_CHECKING:
    from sockactd.master.reloads import ReloadResult
    from sockactd.modes import ReloadMode

__all__ = ["ReloadsView", "status_data", "status_line"]


class ReloadsView(Protocol):
    """What the status asks of the reload queue (master/reloads.py's Reloads)."""

    @property
    def last(self) -> ReloadResult | None: ...
    def progress(self) -> str | None: ...
    def running_mode(self) -> ReloadMode | None: ...


def status_line(phase: Phase, pool: WorkerPool, reloads: ReloadsView) -> str:
    progress = reloads.progress()
    if phase is Phase.RELOADING and progress is not None:
        return progress
    ready = len(pool.serving())
    served = sum(worker.board.read()[0] for worker in pool)
    text = (
        f"{phase.value}: {ready}/{pool.size} workers ready, "
        f"generation {pool.generation}, {served} requests served"
    )
    last = reloads.last
    if last is not None and not last.ok:
        text += f" (last reload failed: {last.message})"
    return text


def status_data(
    phase: Phase, pool: WorkerPool, reloads: ReloadsView, now: float, started_wall: float
) -> StatusData:
    workers: list[WorkerStatusData] = [
        {
            "pid": worker.pid,
            "generation": worker.generation,
            "state": worker.state.value,
            "requests": worker.board.read()[0],
            "busy": worker.board.read()[2],
            "rss_bytes": _rss(worker.pid),
            "uptime": round(now - worker.started, 3),
        }
        for worker in pool
        if worker.state is not WorkerState.GONE
    ]
    last: LastReloadData | None = None
    result = reloads.last
    if result is not None:
        last = {"ok": result.ok, "message": result.message, "generation": result.generation}
    reload: ReloadProgressData | None = None
    progress, mode = reloads.progress(), reloads.running_mode()
    if progress is not None and mode is not None:
        reload = {"mode": mode.value, "progress": progress}
    return {
        "phase": phase.value,
        "generation": pool.generation,
        "uptime": round(time.time() - started_wall, 3),
        "pid": os.getpid(),
        "reload": reload,
        "last_reload": last,
        "workers": workers,
    }


def _rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
