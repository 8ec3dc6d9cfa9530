"""The worker table over a fake kernel: what the master relies on when exits arrive."""

from __future__ import annotations

import signal

from sockactd.pool import WorkerState
from tests.unit.master.fakes import exit_worker, make_pool, signals_to


def test_retire_sends_sigterm_once_and_arms_the_mercy_deadline() -> None:
    pool, kernel = make_pool(1)
    worker = pool.spawn()
    pool.mark_ready(worker)
    pool.retire(worker, mercy=7.0)
    pool.retire(worker, mercy=7.0)
    assert signals_to(kernel, worker) == [signal.SIGTERM]
    assert worker.state is WorkerState.DRAINING
    assert worker.kill_deadline == kernel.now + 7.0


def test_retired_worker_counts_as_accepting_until_it_says_otherwise_or_exits() -> None:
    pool, kernel = make_pool(2)
    said, gone = pool.spawn(), pool.spawn()
    for worker in (said, gone):
        pool.mark_ready(worker)
        pool.retire(worker, mercy=60.0)
    kernel.now += 59.0  # e.g. busy in one long request, or hung: time alone proves nothing
    assert pool.still_accepting() == [said, gone]
    said.accepting = False  # its DRAINING frame arrived
    exit_worker(pool, kernel, gone)
    assert pool.still_accepting() == []


def test_new_generation_on_an_empty_pool() -> None:
    pool, _ = make_pool(2)
    assert pool.new_generation() == 2


def test_a_worker_is_reaped_once_even_if_reported_twice() -> None:
    pool, kernel = make_pool(1)
    worker = pool.spawn()
    pool.mark_ready(worker)
    exit_worker(pool, kernel, worker, status=0)
    kernel.exited[worker.pid] = 0  # a second report of the same exit must not count again
    assert pool.reap(worker) is None
