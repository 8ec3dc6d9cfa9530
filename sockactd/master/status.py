"""What the master says about itself: the STATUS= line and `sockactctl status` data.

Read-only views over the master's state; nothing here changes it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from sockactd.control.protocol import (
    LastReloadData,
    ReloadProgressData,
    StatusData,
    WorkerStatusData,
)
from sockactd.master.phase import Phase
from sockactd.master.pool import WorkerState

if TYPE_CHECKING:
    from sockactd.master.master import Master

__all__ = ["status_data", "status_line"]


def status_line(master: Master) -> str:
    pool = master.pool
    progress = master.reloads.progress()
    if master.phase is Phase.RELOADING and progress is not None:
        return progress
    ready = len(pool.serving())
    served = sum(worker.board.read()[0] for worker in pool)
    text = (
        f"{master.phase.value}: {ready}/{pool.size} workers ready, "
        f"generation {pool.generation}, {served} requests served"
    )
    last = master.reloads.last
    if last is not None and not last.ok:
        text += f" (last reload failed: {last.message})"
    return text


def status_data(master: Master) -> StatusData:
    now = master.kernel.monotonic()
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
        for worker in master.pool
        if worker.state is not WorkerState.GONE
    ]
    last: LastReloadData | None = None
    if master.reloads.last is not None:
        result = master.reloads.last
        last = {"ok": result.ok, "message": result.message, "generation": result.generation}
    reload: ReloadProgressData | None = None
    progress, current = master.reloads.progress(), master.reloads.current
    if progress is not None and current is not None:
        reload = {"mode": current.mode, "progress": progress}
    return {
        "phase": master.phase.value,
        "generation": master.pool.generation,
        "uptime": round(time.time() - master.started_wall, 3),
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
