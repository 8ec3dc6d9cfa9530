"""What the master says about itself: the STATUS= line and `sockactctl status` data."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sockactd.master.phase import Phase
from sockactd.master.reloads import ReloadResult, Verdict
from sockactd.master.status import status_data, status_line
from sockactd.modes import ReloadMode
from sockactd.pool import WorkerPool
from tests.unit.master.fakes import FakeKernel, make_pool


@dataclass
class Reloads:
    """The reload queue as the status sees it."""

    last: ReloadResult | None = None
    running: ReloadMode | None = None
    step: str | None = None

    def progress(self) -> str | None:
        return self.step

    def running_mode(self) -> ReloadMode | None:
        return self.running


def pool_with(ready: int, booting: int, size: int) -> tuple[WorkerPool, FakeKernel]:
    pool, kernel = make_pool(size)
    for _ in range(ready):
        pool.mark_ready(pool.spawn())
    for _ in range(booting):
        pool.spawn()
    return pool, kernel


def test_the_line_counts_ready_workers_generation_and_requests() -> None:
    pool, _ = pool_with(ready=2, booting=1, size=3)
    for _ in range(5):
        pool.serving()[0].board.request_started()
        pool.serving()[0].board.request_finished()
    pool.serving()[1].board.request_started()
    pool.serving()[1].board.request_finished()
    line = status_line(Phase.SERVING, pool, Reloads())
    assert line == "serving: 2/3 workers ready, generation 1, 6 requests served"


def test_the_line_says_why_the_last_reload_failed_until_one_works() -> None:
    pool, _ = pool_with(ready=2, booting=0, size=2)
    failed = ReloadResult(ReloadMode.CHAIN, Verdict.ABORTED, "chain reload aborted: boom", 1)
    line = status_line(Phase.SERVING, pool, Reloads(last=failed))
    assert line.endswith(" (last reload failed: chain reload aborted: boom)")
    worked = ReloadResult(ReloadMode.CHAIN, Verdict.DONE, "chain reload done", 2)
    assert "failed" not in status_line(Phase.SERVING, pool, Reloads(last=worked))


def test_while_reloading_the_line_is_the_reloads_progress() -> None:
    pool, _ = pool_with(ready=2, booting=1, size=2)
    reloads = Reloads(running=ReloadMode.CHAIN, step="chain reload: 1/2 workers on generation 2")
    assert status_line(Phase.RELOADING, pool, reloads) == reloads.step
    assert status_line(Phase.SERVING, pool, reloads).startswith("serving: 2/2")


def test_the_data_lists_workers_the_reload_and_the_last_one() -> None:
    pool, kernel = pool_with(ready=1, booting=1, size=2)
    ready, booting = pool.serving()[0], pool.booting()[0]
    ready.board.request_started()
    last = ReloadResult(
        ReloadMode.WORKERS, Verdict.DONE, "workers reload done: generation 1 serves", 1
    )
    reloads = Reloads(last=last, running=ReloadMode.CHAIN, step="chain reload: 0/2")
    data = status_data(Phase.RELOADING, pool, reloads, kernel.now + 1.5, started_wall=0.0)
    assert data["phase"] == "reloading" and data["generation"] == 1 and data["pid"] == os.getpid()
    assert data["reload"] == {"mode": "chain", "progress": "chain reload: 0/2"}
    assert data["last_reload"] == {
        "ok": True,
        "message": "workers reload done: generation 1 serves",
        "generation": 1,
    }
    rows = {row["pid"]: row for row in data["workers"]}
    assert rows[ready.pid]["state"] == "serving" and rows[ready.pid]["busy"] == 1
    assert rows[booting.pid]["state"] == "booting" and rows[booting.pid]["busy"] == 0
    assert rows[ready.pid]["uptime"] == 1.5


def test_no_reload_running_and_none_done_yet() -> None:
    pool, kernel = pool_with(ready=1, booting=0, size=1)
    data = status_data(Phase.SERVING, pool, Reloads(), kernel.now, started_wall=0.0)
    assert data["reload"] is None and data["last_reload"] is None
