"""Recycling decisions over the fake kernel: who is replaced, when, why, and how."""

from __future__ import annotations

import signal

import pytest

from sockactd.config.model import Config
from sockactd.master.recycle import Recycler
from sockactd.master.tally import Tally, exit_reason
from sockactd.pool import ExitReason, WorkerPool, WorkerState
from tests.unit.master.fakes import FakeKernel, exit_worker, make_pool, signals_to

MIB = 1024 * 1024


def serving_pool(size: int = 2) -> tuple[WorkerPool, FakeKernel]:
    pool, kernel = make_pool(size)
    for _ in range(size):
        pool.mark_ready(pool.spawn())
    return pool, kernel


def recycler(pool: WorkerPool, reloading: bool = False, **settings: object) -> Recycler:
    config = Config(**settings)
    return Recycler(lambda: config, pool, lambda: reloading, rss=lambda pid: 100 * MIB)


def test_workers_are_numbered_and_a_replacement_takes_its_predecessors_number() -> None:
    pool, _ = serving_pool(3)
    assert [w.number for w in pool] == [1, 2, 3]
    second = pool.by_pid(1002)
    assert second is not None
    second.recycling = True
    assert pool.spawn().number == 2


@pytest.mark.parametrize(
    ("settings", "number", "expected"),
    [
        ({"max_requests": 100}, 2, 100),
        ({"max_requests": 100, "max_requests_delta": 10}, 1, 110),
        ({"max_requests": 100, "max_requests_delta": 10}, 3, 130),
        ({"max_requests_delta": 10}, 3, 0),  # the delta alone does nothing, as in uWSGI
    ],
)
def test_request_limit_per_worker(settings: dict[str, int], number: int, expected: int) -> None:
    pool, _ = serving_pool(3)
    worker = next(w for w in pool if w.number == number)
    assert recycler(pool, **settings).request_limit(worker) == expected


def test_max_requests_spawns_the_replacement_and_keeps_the_old_worker_serving() -> None:
    pool, kernel = serving_pool(2)
    first = next(iter(pool))
    first.board.request_finished()  # the worker's own count, as the board carries it
    rec = recycler(pool, max_requests=1)
    rec.check(kernel.now)
    assert first.recycling and first.state is WorkerState.SERVING
    assert signals_to(kernel, first) == []
    replacement = next(w for w in pool if w.replacing is first)
    assert replacement.number == first.number
    assert first.exit_reason is ExitReason.MAX_REQUESTS
    rec.check(kernel.now)  # not twice
    assert len(pool) == 3


def test_lifetime_with_delta_recycles_worker_one_before_worker_two() -> None:
    pool, kernel = serving_pool(2)
    rec = recycler(pool, max_worker_lifetime=10.0, max_worker_lifetime_delta=5.0)
    kernel.now += 15.0
    rec.check(kernel.now)
    assert [w.number for w in pool if w.recycling] == [1]
    kernel.now += 5.0
    rec.check(kernel.now)
    assert sorted(w.number for w in pool if w.recycling) == [1, 2]
    assert {w.exit_reason for w in pool if w.recycling} == {ExitReason.LIFETIME}


def test_no_replacement_first_recycling_while_a_reload_runs() -> None:
    pool, kernel = serving_pool(2)
    kernel.now += 100
    recycler(pool, reloading=True, max_worker_lifetime=1.0).check(kernel.now)
    assert len(pool) == 2


def test_evil_reload_on_rss_kills_at_once_and_the_exit_is_not_a_crash() -> None:
    pool, kernel = serving_pool(1)
    (worker,) = pool
    rec = recycler(pool, evil_reload_on_rss=99)
    rec.check(kernel.now)
    assert signals_to(kernel, worker) == [signal.SIGKILL]
    assert worker.state is WorkerState.DRAINING
    rec.check(kernel.now + 5)  # killed once
    assert signals_to(kernel, worker) == [signal.SIGKILL]
    assert exit_reason(worker, WorkerState.DRAINING, stopping=False) is ExitReason.MEMORY_KILL


def test_evil_reload_on_rss_spares_a_worker_under_the_limit() -> None:
    pool, kernel = serving_pool(1)
    recycler(pool, evil_reload_on_rss=101).check(kernel.now)
    assert kernel.sent == []


def test_a_worker_that_stopped_for_memory_is_retired_so_its_replacement_starts() -> None:
    pool, _kernel = serving_pool(1)
    (worker,) = pool
    rec = recycler(pool, reload_on_rss=64)
    rec.on_draining(worker, "reload-on-rss: RSS 65.0 MiB over the 64 MiB limit")
    assert worker.state is WorkerState.DRAINING
    assert worker.exit_reason is ExitReason.MEMORY
    assert pool.active() == []  # health.py sees the deficit and spawns in the same turn


def test_a_drain_for_sigterm_is_not_a_recycle() -> None:
    pool, _kernel = serving_pool(1)
    (worker,) = pool
    pool.retire(worker, 30.0)
    recycler(pool, reload_on_rss=64).on_draining(worker, "SIGTERM")
    assert worker.exit_reason is None


@pytest.mark.parametrize(
    ("state", "stopping", "expected"),
    [
        (WorkerState.BOOTING, False, ExitReason.BOOT_FAILURE),
        (WorkerState.SERVING, False, ExitReason.CRASH),
        (WorkerState.DRAINING, False, ExitReason.RELOAD),
        (WorkerState.DRAINING, True, ExitReason.STOP),
        (WorkerState.SERVING, True, ExitReason.STOP),
    ],
)
def test_exit_reason_without_a_recorded_decision(
    state: WorkerState, stopping: bool, expected: ExitReason
) -> None:
    pool, _kernel = serving_pool(1)
    (worker,) = pool
    assert exit_reason(worker, state, stopping) is expected


def test_tally_counts_exits_by_reason() -> None:
    pool, kernel = serving_pool(2)
    tally = Tally()
    first, second = pool
    first.exit_reason = ExitReason.HARAKIRI
    for worker in (first, second):
        exit_worker(pool, kernel, worker)
        tally.worker_exited(worker, WorkerState.DRAINING, stopping=False)
    assert tally.exits == {ExitReason.HARAKIRI: 1, ExitReason.RELOAD: 1}
