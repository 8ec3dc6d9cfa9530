"""master/liveness.py over the fake kernel: who is silent, and replacement first (issue 12, 11)."""

from __future__ import annotations

import signal

from sockactd.master.liveness import replace_silent, retire_replaced, silent_workers
from sockactd.pool import WorkerState
from tests.unit.master.fakes import make_pool, signals_to

TIMEOUT = 10.0


def serving(size: int):  # type: ignore[no-untyped-def]
    pool, kernel = make_pool(size)
    workers = [pool.spawn() for _ in range(size)]
    for worker in workers:
        pool.mark_ready(worker)
    return pool, kernel, workers


def test_a_worker_beating_is_alive_and_one_silent_past_the_timeout_is_not() -> None:
    pool, kernel, (beating, stopped, busy, recent) = serving(4)
    booting = pool.spawn()  # never ready: ready-timeout's business
    busy.board.request_started()  # busy: harakiri's business
    kernel.now += 30.0
    beating.board.beat(kernel.now - 1.0)
    stopped.board.beat(kernel.now - 11.0)
    recent.board.beat(kernel.now - 9.0)
    assert silent_workers(pool, kernel.now, TIMEOUT) == [stopped]
    assert booting not in silent_workers(pool, kernel.now + 100, TIMEOUT)


def test_a_worker_that_never_beat_counts_from_its_ready() -> None:
    pool, kernel, (worker,) = serving(1)
    kernel.now += 9.0
    assert silent_workers(pool, kernel.now, TIMEOUT) == []
    kernel.now += 2.0
    assert silent_workers(pool, kernel.now, TIMEOUT) == [worker]


def test_the_replacement_starts_first_and_the_silent_one_is_killed_when_it_is_ready() -> None:
    pool, kernel, (stopped, other) = serving(2)
    other.board.beat(kernel.now + 20.0)
    kernel.now += 20.0
    replace_silent(pool, kernel.now, TIMEOUT)
    (new,) = pool.booting()
    assert new.replacing is stopped and kernel.sent == []  # nothing killed yet
    replace_silent(pool, kernel.now + 5, TIMEOUT)
    assert len(pool.booting()) == 1  # one replacement at a time
    pool.mark_ready(new)
    retire_replaced(pool, stopped, mercy=30.0)
    assert signals_to(kernel, stopped) == [signal.SIGKILL]  # SIGTERM would wait forever
    assert stopped.state is WorkerState.DRAINING  # its exit is no crash
