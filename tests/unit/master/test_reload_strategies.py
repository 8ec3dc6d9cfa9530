"""Reload strategies against a real WorkerPool over a fake kernel (no fork).

What an operator cares about, per mode: capacity never drops (old workers are
only retired after their replacements are ready), a failed new worker aborts
the reload with the old generation still serving, and the generation number
moves only when the reload is done.
"""

from __future__ import annotations

import signal

from sockactd.pool import WorkerState
from sockactd.reload.all_workers import AllWorkersReload
from sockactd.reload.base import Outcome
from sockactd.reload.chain import ChainReload
from sockactd.reload.reexec import ReexecReload
from sockactd.reload.registry import standard_second_half
from tests.unit.master.fakes import FakeHost, exit_worker, make_pool, signals_to


def serving_pool(size: int):  # type: ignore[no-untyped-def]
    pool, kernel = make_pool(size)
    for _ in range(size):
        pool.mark_ready(pool.spawn())
    return pool, kernel


def test_chain_spawns_first_and_retires_only_after_ready() -> None:
    pool, kernel = serving_pool(3)
    old = pool.serving()
    chain = ChainReload()
    chain.begin(pool, FakeHost())
    assert len(pool.booting(generation=2)) == 1
    assert kernel.sent == []  # nobody retired before a replacement is ready
    for step in range(3):
        (new,) = pool.booting(generation=2)
        assert len(pool.serving()) == 3  # capacity never below the configured number
        pool.mark_ready(new)
        chain.on_ready(pool, new)
        assert signals_to(kernel, old[step]) == [signal.SIGTERM]
    assert chain.outcome is Outcome.DONE
    assert pool.generation == 2
    assert [w.generation for w in pool.serving()] == [2, 2, 2]


def test_chain_aborts_on_boot_failure_and_keeps_old_workers() -> None:
    pool, kernel = serving_pool(2)
    chain = ChainReload()
    chain.begin(pool, FakeHost())
    (new,) = pool.booting()
    chain.on_failed(pool, new, "failed to boot: ImportError")
    assert chain.outcome is Outcome.ABORTED
    assert "ImportError" in chain.reason and str(new.pid) in chain.reason
    assert kernel.sent == []  # no old worker was touched
    assert pool.generation == 1 and pool.pending is None
    assert len(pool.serving(generation=1)) == 2


def test_chain_skips_an_old_worker_that_died() -> None:
    pool, kernel = serving_pool(2)
    first, second = pool.serving()
    chain = ChainReload()
    chain.begin(pool, FakeHost())
    exit_worker(pool, kernel, second, status=9)
    chain.on_exit(pool, second)
    (new,) = pool.booting()
    pool.mark_ready(new)
    chain.on_ready(pool, new)
    assert signals_to(kernel, first) == [signal.SIGTERM]
    assert chain.outcome is Outcome.DONE


def test_workers_reload_retires_old_only_when_all_new_are_ready() -> None:
    pool, kernel = serving_pool(2)
    old = pool.serving()
    reload = AllWorkersReload()
    reload.begin(pool, FakeHost())
    new = pool.booting(generation=2)
    assert len(new) == 2
    pool.mark_ready(new[0])
    reload.on_ready(pool, new[0])
    assert kernel.sent == [] and reload.outcome is Outcome.RUNNING
    pool.mark_ready(new[1])
    reload.on_ready(pool, new[1])
    assert reload.outcome is Outcome.DONE
    assert sorted(pid for pid, _ in kernel.sent) == sorted(w.pid for w in old)
    assert {sig for _, sig in kernel.sent} == {signal.SIGTERM}
    assert pool.generation == 2


def test_workers_reload_abort_takes_down_the_new_generation_only() -> None:
    pool, kernel = serving_pool(2)
    old = pool.serving()
    reload = AllWorkersReload()
    reload.begin(pool, FakeHost())
    ready_new, failing_new = pool.booting(generation=2)
    pool.mark_ready(ready_new)
    reload.on_ready(pool, ready_new)
    reload.on_failed(pool, failing_new, "did not report ready within 5s (ready-timeout)")
    assert reload.outcome is Outcome.ABORTED and "ready-timeout" in reload.reason
    assert signals_to(kernel, ready_new) == [signal.SIGTERM]  # drained, it may hold requests
    assert all(signals_to(kernel, w) == [] for w in old)
    assert pool.generation == 1 and pool.pending is None


def test_a_workers_reload_progress_names_the_mode_it_runs_for() -> None:
    # systemd's STATUS= line during the reload; a standard reload's second half (the new
    # image renewing its workers) is this strategy too, and says "standard"
    for reload, said in [(AllWorkersReload(), "workers"), (standard_second_half(), "standard")]:
        pool, _ = serving_pool(2)
        reload.begin(pool, FakeHost())
        pool.mark_ready(pool.booting(generation=2)[0])
        assert reload.progress(pool) == f"{said} reload: 1/2 workers ready on generation 2"


def test_standard_reload_checks_before_exec() -> None:
    pool, _ = serving_pool(2)
    host = FakeHost()
    reload = ReexecReload()
    reload.begin(pool, host)
    assert host.preflights == 1 and host.execs == 0
    reload.on_preflight(pool, ok=False, details="SyntaxError: invalid syntax")
    assert host.execs == 0
    assert reload.outcome is Outcome.ABORTED and "SyntaxError" in reload.reason


def test_standard_reload_execs_with_old_workers_still_serving() -> None:
    pool, kernel = serving_pool(2)
    host = FakeHost()
    reload = ReexecReload()
    reload.begin(pool, host)
    reload.on_preflight(pool, ok=True, details="")
    assert host.execs == 1
    assert kernel.sent == []  # the new image adopts them


def test_standard_reload_drain_first_waits_for_workers_before_exec() -> None:
    pool, kernel = serving_pool(2)
    host = FakeHost()
    reload = ReexecReload(drain_first=True)
    reload.begin(pool, host)
    reload.on_preflight(pool, ok=True, details="")
    assert host.execs == 0 and reload.pauses_respawn()
    for worker in pool:
        assert worker.state is WorkerState.DRAINING
        exit_worker(pool, kernel, worker)
        reload.on_exit(pool, worker)
    assert host.execs == 1
