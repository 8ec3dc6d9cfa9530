"""Keeping the configured number of healthy workers, over the fake kernel and its clock.

Back-off for code that cannot boot, an immediate replacement for a crash, and
every deadline (ready-timeout, the mercy after a retirement, harakiri) ending in
SIGKILL -- decided by Health with no fork and no sleep. max-requests itself is
recycle.py's (test_recycle.py); here, that Health leaves its replacement alone.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

import pytest

from sockactd.config.model import Config
from sockactd.master.health import Health
from sockactd.master.phase import AllReady, PhaseTracker, StopRequested
from sockactd.master.recycle import Recycler
from sockactd.pool import ExitReason, Worker, WorkerPool, WorkerState
from tests.unit.master.fakes import FakeKernel, exit_worker, make_pool, signals_to


class Reload:
    """The two questions Health asks of the reload queue, answered by the test."""

    running = False
    pauses_respawn = False


def health(size: int = 2, **settings: object) -> tuple[Health, WorkerPool, FakeKernel, Reload]:
    """A serving master's Health with `size` ready workers."""
    pool, kernel = make_pool(size)
    for _ in range(size):
        pool.mark_ready(pool.spawn())
    config = Config(**settings)
    phase = PhaseTracker()
    phase.move(AllReady())
    reload = Reload()
    checks = Health(pool, phase, kernel.monotonic, lambda: config,
                    lambda: reload.running, lambda: reload.pauses_respawn)  # fmt: skip
    return checks, pool, kernel, reload


def test_a_crashed_serving_worker_is_replaced_at_once() -> None:
    checks, pool, kernel, _ = health()
    dead = pool.serving()[0]
    exit_worker(pool, kernel, dead, status=9)
    checks.count_serving_crash(dead)
    assert checks.deficit() == 1
    checks.keep_capacity(kernel.now)
    assert len(pool.booting()) == 1


def test_boot_failures_in_a_row_back_off_doubling() -> None:
    checks, pool, kernel, _ = health()
    exit_worker(pool, kernel, pool.serving()[0])
    checks.keep_capacity(kernel.now)
    waits = []
    for _ in range(4):
        (worker,) = pool.booting()
        exit_worker(pool, kernel, worker, status=1)
        checks.count_boot_failure(worker)
        waits.append(round(checks.next_spawn - kernel.now, 3))
        checks.keep_capacity(kernel.now)
        if waits[-1] > 0:
            assert pool.booting() == []  # nothing forked before the back-off passed
            kernel.now = checks.next_spawn
            checks.keep_capacity(kernel.now)
        assert len(pool.booting()) == 1
    assert waits == [0.0, 0.1, 0.2, 0.4]


def test_no_respawn_while_the_reload_restores_capacity_or_the_server_stops() -> None:
    checks, pool, kernel, reload = health()
    exit_worker(pool, kernel, pool.serving()[0])
    reload.pauses_respawn = True
    assert checks.deficit() == 0
    reload.pauses_respawn = False
    assert checks.deficit() == 1
    checks.phase.move(StopRequested(graceful=True))
    assert checks.deficit() == 0


def test_a_worker_that_misses_ready_timeout_is_killed_with_the_reason() -> None:
    checks, pool, kernel, _ = health(ready_timeout=10.0)
    late = pool.spawn()
    kernel.now += 9.9
    checks.check_deadlines(kernel.now)
    assert signals_to(kernel, late) == []
    kernel.now += 0.2
    checks.check_deadlines(kernel.now)
    assert signals_to(kernel, late) == [signal.SIGKILL]
    assert late.boot_error == "did not report ready within 10s (ready-timeout)"
    checks.check_deadlines(kernel.now + 5)
    assert signals_to(kernel, late) == [signal.SIGKILL]  # once


def test_a_retired_worker_past_its_mercy_is_killed() -> None:
    checks, pool, kernel, _ = health()
    old = pool.serving()[0]
    pool.retire(old, mercy=30.0)
    kernel.now += 29.0
    checks.check_deadlines(kernel.now)
    assert signals_to(kernel, old) == [signal.SIGTERM]
    kernel.now += 1.0
    checks.check_deadlines(kernel.now)
    assert signals_to(kernel, old) == [signal.SIGTERM, signal.SIGKILL]


def _killed_past_its_mercy(
    caplog: pytest.LogCaptureFixture,
    doing: Callable[[Worker, FakeKernel], None],
    ready: bool = True,
) -> str:
    """`doing(worker, kernel)` writes a worker's board (and may set the clock); the worker is
    retired with 30 s of mercy and outlives it: what the warning with its SIGKILL says."""
    checks, pool, kernel, _ = health()
    worker = pool.serving()[0] if ready else pool.spawn()
    doing(worker, kernel)
    pool.retire(worker, mercy=30.0)
    kernel.now += 30.0
    with caplog.at_level(logging.WARNING):
        checks.check_deadlines(kernel.now)
    assert signals_to(kernel, worker) == [signal.SIGTERM, signal.SIGKILL]
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"worker {worker.pid} ") and line.endswith("; killing it"), line
    return line.split(" ", 2)[2].removesuffix("; killing it")


def test_past_its_mercy_a_worker_in_requests_is_said_to_be_busy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def in_two_requests(worker: Worker, kernel: FakeKernel) -> None:
        board = worker.board
        board.request_started()  # on the real monotonic clock, as a worker's are
        kernel.now = board.read()[1] + 2.0  # retired 2 s into that request
        board.describe("GET /report from 10.0.0.7")
        second = threading.Thread(target=board.request_started)  # another handler thread
        second.start()
        second.join()

    said = _killed_past_its_mercy(caplog, in_two_requests)
    assert said == (
        "still busy after its mercy: 2 requests in progress, the oldest for 32.0s"
        " (last started: GET /report from 10.0.0.7)"
    )


@pytest.mark.parametrize(
    ("last_beat", "ready", "said"),
    [
        # its loop went round 0.4 s before the deadline: alive, but not done
        (29.6, True, "its loop still runs (last seen 0.4s ago)"),
        # SIGSTOP, or a loop stuck outside any request: no heartbeat since the retire
        (0.0, True, "its loop has not run for 30s (stopped, or stuck)"),
        # retired while it was still importing the app, and never got further
        (None, False, "it has not reported ready (still starting, or hung in its start)"),
    ],
)
def test_past_its_mercy_an_idle_worker_is_not_said_to_be_busy(
    caplog: pytest.LogCaptureFixture, last_beat: float | None, ready: bool, said: str
) -> None:
    def idle(worker: Worker, kernel: FakeKernel) -> None:
        if last_beat is not None:
            worker.ready_at = kernel.now - 60.0
            worker.board.beat(kernel.now + last_beat)  # seconds after its retire

    assert _killed_past_its_mercy(caplog, idle, ready) == (
        f"did not exit within its mercy, in no request: {said}"
    )


def test_at_the_stop_deadline_each_worker_left_gets_one_line_and_one_sigkill(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A graceful stop retires every worker with the stop's mercy and keeps a deadline of
    its own for the same moment: each worker still there then is killed once, said once."""
    checks, pool, kernel, _ = health()
    busy, idle = pool.serving()
    busy.board.request_started()  # on the real monotonic clock, as a worker's are
    kernel.now = busy.board.read()[1]
    for worker in (busy, idle):
        pool.retire(worker, mercy=30.0)
    kernel.now += 30.0
    idle.ready_at = kernel.now - 60.0
    idle.board.beat(kernel.now - 0.5)
    limit = "reload-mercy (30s) of the graceful stop"  # the master names its deadline
    with caplog.at_level(logging.WARNING):
        checks.kill_at_stop(kernel.now, limit)
        checks.check_deadlines(kernel.now)  # the retire's deadlines: a SIGKILL cleared them
    assert [r.getMessage() for r in caplog.records] == [
        f"worker {busy.pid} (generation 1) did not exit within {limit}, 1 request in progress, "
        "the oldest for 30.0s; killing it (SIGKILL)",
        f"worker {idle.pid} (generation 1) did not exit within {limit}, in no request: its "
        "loop still runs (last seen 0.5s ago); killing it (SIGKILL)",
    ]
    assert signals_to(kernel, busy) == signals_to(kernel, idle) == [signal.SIGTERM, signal.SIGKILL]


def test_harakiri_kills_a_worker_whose_request_runs_too_long() -> None:
    checks, pool, kernel, _ = health(harakiri=30)
    stuck, idle = pool.serving()
    stuck.board.request_started()  # the board's clock is the real monotonic one
    started = time.monotonic()
    checks.check_boards(started + 29)
    assert kernel.sent == []
    checks.check_boards(started + 31)
    assert signals_to(kernel, stuck) == [signal.SIGKILL] and signals_to(kernel, idle) == []
    assert stuck.state is WorkerState.DRAINING  # its exit is expected, not a crash
    assert stuck.exit_reason is ExitReason.HARAKIRI


def test_harakiri_off_looks_at_no_board() -> None:
    checks, pool, kernel, _ = health(harakiri=0)
    pool.serving()[0].board.request_started()
    checks.check_boards(time.monotonic() + 3600)
    assert kernel.sent == []


def test_scaling_down_retires_the_surplus_but_not_during_a_reload() -> None:
    checks, pool, kernel, reload = health(size=3, worker_reload_mercy=60.0)
    checks.scale(-1)
    assert pool.size == 2
    reload.running = True
    checks.keep_capacity(kernel.now)
    assert kernel.sent == []
    reload.running = False
    checks.keep_capacity(kernel.now)
    (gone,) = pool.in_state(WorkerState.DRAINING)
    assert signals_to(kernel, gone) == [signal.SIGTERM]
    assert gone.exit_reason is ExitReason.SCALE_DOWN
    assert gone.kill_deadline == kernel.now + 60.0
    checks.scale(-5)
    assert pool.size == 1  # never below one


def test_scaling_up_spawns_at_once() -> None:
    checks, pool, kernel, _ = health(size=1)
    checks.scale(+2)
    checks.keep_capacity(kernel.now)
    assert len(pool.booting()) == 2


def test_a_max_requests_replacement_is_neither_doubled_nor_retired_as_surplus() -> None:
    checks, pool, kernel, _ = health(max_requests=1)
    first = pool.serving()[0]
    first.board.request_finished()  # its one request: time to recycle it
    Recycler(checks.settings, pool, lambda: False, rss=lambda pid: 0).check(kernel.now)
    (replacement,) = pool.booting()
    assert checks.deficit() == 0  # the old one still serves; nothing more is forked
    pool.mark_ready(replacement)
    checks.keep_capacity(kernel.now)
    assert len(pool) == 3 and kernel.sent == []  # three serve until master.py retires the old
