"""The reload queue over the fake kernel: merging, queueing, refusals, what `--wait` hears.

A real WorkerPool and real strategies (workers, chain), a recording notifier, no
fork and no sleep: the test says which new worker became ready and when a
retired one confirmed it stopped accepting.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

import pytest

from sockactd.config.load import load_config
from sockactd.config.model import Config
from sockactd.master.handover import Handover, WorkerRecord
from sockactd.master.health import Health
from sockactd.master.phase import AllReady, Phase, PhaseTracker, StopRequested
from sockactd.master.reconfig import Reconfigure
from sockactd.master.reloads import ReloadResult, Reloads, Verdict
from sockactd.master.tally import Tally
from sockactd.modes import ReloadMode
from sockactd.pool import Worker, WorkerPool, WorkerState
from tests.unit.master.fakes import (
    FakeKernel,
    exit_worker,
    make_board,
    make_loop,
    make_pool,
    signals_to,
)

LAZY = ["--lazy-apps", "app:application"]


@dataclass
class FakeNotifier:
    said: list[tuple[str, str]] = field(default_factory=list)

    def reloading(self, status: str) -> None:
        self.said.append(("RELOADING", status))

    def ready(self, status: str) -> None:
        self.said.append(("READY", status))

    def status(self, text: str) -> None:
        self.said.append(("STATUS", text))


@dataclass
class Wing:
    reloads: Reloads
    pool: WorkerPool
    kernel: FakeKernel
    phase: PhaseTracker
    notifier: FakeNotifier
    tally: Tally
    execs: list[list[str]]


def wing(argv: list[str] = LAZY, size: int = 2) -> Wing:
    """A serving master's reload queue: `size` generation-1 workers ready."""
    pool, kernel = make_pool(size)
    for _ in range(size):
        pool.mark_ready(pool.spawn())
    config = load_config(argv, {})
    phase = PhaseTracker()
    phase.move(AllReady())
    notifier, tally, execs = FakeNotifier(), Tally(), []
    installed: list[Config] = []
    reloads = Reloads(
        pool,
        phase,
        notifier,
        tally,
        kernel,
        lambda: config,
        Reconfigure(argv, {}, os.getcwd(), installed.append),
        make_loop(),
        lambda: "serving",
        execs.append,
        lambda: "",
    )
    return Wing(reloads, pool, kernel, phase, notifier, tally, execs)


def bring_up(w: Wing) -> None:
    """Every booting worker reports ready, and every retired one stops accepting."""
    while booting := w.pool.booting():
        for worker in booting:
            w.pool.mark_ready(worker)
            w.reloads.on_ready(worker)
    for worker in w.pool.in_state(WorkerState.DRAINING):
        worker.accepting = False  # its D frame
    w.reloads.settle()


def test_a_reload_that_succeeds_tells_its_waiter_and_systemd() -> None:
    w = wing()
    heard: list[ReloadResult] = []
    assert w.reloads.request(ReloadMode.WORKERS, heard.append) is None
    assert w.phase.current is Phase.RELOADING
    assert w.notifier.said[0][0] == "RELOADING"
    assert heard == []  # nothing until the new generation serves
    bring_up(w)
    assert [(r.verdict, r.ok, r.generation) for r in heard] == [(Verdict.DONE, True, 2)]
    assert heard[0].message == "workers reload done: generation 2 serves"
    assert w.phase.current is Phase.SERVING
    assert w.notifier.said[-1] == ("READY", "serving")
    assert w.reloads.last == heard[0]
    assert w.tally.reloads[ReloadMode.WORKERS, "done"] == 1


def test_done_waits_until_every_retired_worker_stopped_accepting_or_exited() -> None:
    w = wing()
    heard: list[ReloadResult] = []
    w.reloads.request(ReloadMode.WORKERS, heard.append)
    for worker in w.pool.booting():
        w.pool.mark_ready(worker)
        w.reloads.on_ready(worker)
    said, gone = w.pool.in_state(WorkerState.DRAINING)
    assert heard == []  # the old generation may still accept a connection
    w.kernel.now += 30.0  # no time makes an unconfirmed worker count as stopped
    w.reloads.settle()
    assert heard == []
    assert w.reloads.progress() == "workers reload: waiting for 2 retired workers to stop accepting"
    said.accepting = False  # its D frame
    w.reloads.settle()
    assert heard == []
    exit_worker(w.pool, w.kernel, gone)
    w.reloads.on_exit(gone)
    assert [r.verdict for r in heard] == [Verdict.DONE]


@pytest.mark.parametrize("mode", [ReloadMode.WORKERS, ReloadMode.CHAIN])
def test_a_retired_worker_that_never_confirms_is_killed_at_its_mercy_then_the_reload_is_done(
    mode: ReloadMode,
) -> None:
    w = wing([*LAZY, "--worker-reload-mercy", "5"])
    health = Health(w.pool, w.phase, w.kernel.monotonic, lambda: load_config(LAZY, {}),
                    lambda: True, lambda: True)  # fmt: skip
    heard: list[ReloadResult] = []
    old = w.pool.serving()
    w.reloads.request(mode, heard.append)
    while booting := w.pool.booting():
        for worker in booting:
            w.pool.mark_ready(worker)
            w.reloads.on_ready(worker)
    assert all(worker.state is WorkerState.DRAINING for worker in old)
    w.kernel.now += 4.9
    health.check_deadlines(w.kernel.now)
    w.reloads.settle()
    assert heard == [] and all(signals_to(w.kernel, worker) == [signal.SIGTERM] for worker in old)
    w.kernel.now += 0.1  # worker-reload-mercy after the last one was retired
    health.check_deadlines(w.kernel.now)
    assert all(signals_to(w.kernel, worker)[-1] is signal.SIGKILL for worker in old)
    assert heard == []  # killed is not gone: it could still accept until it has exited
    for worker in old:
        exit_worker(w.pool, w.kernel, worker, status=-signal.SIGKILL)
        w.reloads.on_exit(worker)
    assert [r.verdict for r in heard] == [Verdict.DONE]


def test_a_standard_reload_is_done_only_when_the_workers_it_adopted_stopped_accepting() -> None:
    """The new image learns the old workers from the hand-over record: they still accept."""
    w = wing(size=0)
    w.pool.size = 2
    w.phase.current = Phase.STARTING  # a new image
    previous = [
        Worker(pid=w.kernel.fork(), generation=1, status_fd=-1, board=make_board(),
               started=w.kernel.now)
        for _ in range(2)
    ]  # fmt: skip
    for worker in previous:  # served in the previous image
        worker.state, worker.accepting = WorkerState.SERVING, True
    record = Handover(1, tuple(WorkerRecord.of(worker) for worker in previous), None, (), (),
                      0.0, {})  # fmt: skip
    for adopted in Handover.from_json(record.to_json()).workers:
        w.pool.adopt(adopted.to_worker())
    heard: list[ReloadResult] = []
    w.reloads.resume_standard([heard.append], [])
    for worker in w.pool.booting():
        w.pool.mark_ready(worker)
        w.reloads.on_ready(worker)
    old = w.pool.in_state(WorkerState.DRAINING)
    assert [worker.pid for worker in old] == [worker.pid for worker in previous]
    assert heard == []  # SIGTERM sent, not yet taken: they may still accept
    for worker in old:
        worker.accepting = False  # its D frame
    w.reloads.settle()
    assert [(r.mode, r.verdict) for r in heard] == [(ReloadMode.STANDARD, Verdict.DONE)]


def test_requests_during_a_reload_queue_and_merge_by_mode() -> None:
    w = wing()
    first: list[ReloadResult] = []
    merged: list[ReloadResult] = []
    w.reloads.request(ReloadMode.CHAIN, first.append)
    w.reloads.request(ReloadMode.WORKERS, merged.append)
    w.reloads.request(ReloadMode.WORKERS, merged.append)
    w.reloads.request(ReloadMode.CHAIN, merged.append)
    assert [(p.mode, len(p.waiters)) for p in w.reloads.queue] == [
        (ReloadMode.WORKERS, 2),
        (ReloadMode.CHAIN, 1),
    ]
    assert [s for s, _ in w.notifier.said].count("RELOADING") == 1  # never two at once
    bring_up(w)  # the chain reload ends, the queued workers reload starts and ends, ...
    bring_up(w)
    bring_up(w)
    assert [r.generation for r in first] == [2]
    assert [(r.mode, r.generation) for r in merged] == [
        (ReloadMode.WORKERS, 3),
        (ReloadMode.WORKERS, 3),
        (ReloadMode.CHAIN, 4),
    ]
    assert all(r.ok for r in first + merged)
    assert not w.reloads.queue


def test_a_reload_asked_for_while_starting_waits_for_the_first_generation() -> None:
    w = wing()
    w.phase.current = Phase.STARTING
    assert w.reloads.request(ReloadMode.CHAIN) is None
    assert w.pool.booting() == [] and len(w.reloads.queue) == 1
    w.phase.move(AllReady())
    w.reloads.start_next()
    assert len(w.pool.booting(generation=2)) == 1


def test_workers_and_chain_reloads_of_a_preloaded_app_are_refused() -> None:
    w = wing(argv=["app:application"])
    for mode in (ReloadMode.WORKERS, ReloadMode.CHAIN):
        heard: list[ReloadResult] = []
        refused = w.reloads.request(mode, heard.append)
        assert refused is not None and refused.verdict is Verdict.REFUSED and not refused.ok
        assert "lazy-apps" in refused.message and "standard" in refused.message
        assert heard == [refused]
    assert not w.reloads.queue and w.pool.booting() == [] and w.notifier.said == []
    assert w.phase.current is Phase.SERVING


def test_the_configured_mode_is_used_when_none_is_given() -> None:
    w = wing(argv=[*LAZY, "--reload-mode", "workers"])
    w.reloads.request(None)
    assert w.reloads.running_mode() is ReloadMode.WORKERS
    assert len(w.pool.booting(generation=2)) == 2  # all at once, not one by one


def test_a_stopping_server_refuses_reloads_and_drops_the_queued_ones() -> None:
    w = wing()
    running: list[ReloadResult] = []
    queued: list[ReloadResult] = []
    w.reloads.request(ReloadMode.CHAIN, running.append)
    w.reloads.request(ReloadMode.WORKERS, queued.append)
    w.phase.move(StopRequested(graceful=True))
    w.reloads.fail_all("the server is stopping")
    assert [(r.mode, r.verdict) for r in running + queued] == [
        (ReloadMode.CHAIN, Verdict.DROPPED),
        (ReloadMode.WORKERS, Verdict.DROPPED),
    ]
    assert queued[0].message == "workers reload not done: the server is stopping"
    late: list[ReloadResult] = []
    refused = w.reloads.request(ReloadMode.CHAIN, late.append)
    assert refused is not None and late == [refused]
    assert refused.message == "the server is stopping"


def test_a_new_worker_that_fails_to_boot_aborts_and_the_old_generation_keeps_serving() -> None:
    w = wing()
    heard: list[ReloadResult] = []
    w.reloads.request(ReloadMode.CHAIN, heard.append)
    (new,) = w.pool.booting(generation=2)
    w.reloads.on_failed(new, "failed to boot: ImportError: no module named x")
    assert [r.verdict for r in heard] == [Verdict.ABORTED]
    assert "ImportError" in heard[0].message and "generation 1 keeps serving" in heard[0].message
    assert w.notifier.said[-1] == ("READY", heard[0].message)  # systemd hears why
    assert w.phase.current is Phase.SERVING
    assert w.reloads.last is not None and not w.reloads.last.ok
    assert len(w.pool.serving(generation=1)) == 2
    assert all(signals_to(w.kernel, old) == [] for old in w.pool.serving(generation=1))
    assert w.tally.reloads[ReloadMode.CHAIN, "aborted"] == 1


def test_an_aborted_reload_starts_the_next_queued_one() -> None:
    w = wing()
    later: list[ReloadResult] = []
    w.reloads.request(ReloadMode.CHAIN)
    w.reloads.request(ReloadMode.WORKERS, later.append)
    (new,) = w.pool.booting()
    w.reloads.on_failed(new, "failed to boot: SyntaxError")
    w.pool.kill(new)
    exit_worker(w.pool, w.kernel, new, status=1)
    w.reloads.on_exit(new)
    assert w.reloads.running_mode() is ReloadMode.WORKERS
    bring_up(w)
    assert [r.verdict for r in later] == [Verdict.DONE]


def test_the_second_half_of_a_standard_reload_answers_the_waiters_it_was_handed() -> None:
    w = wing()
    w.phase.current = Phase.STARTING  # a new image: its adopted workers serve
    heard: list[ReloadResult] = []
    w.reloads.resume_standard([heard.append], [ReloadMode.CHAIN])
    assert w.phase.current is Phase.RELOADING
    assert len(w.pool.booting()) == 2
    bring_up(w)
    assert [(r.mode, r.verdict) for r in heard] == [(ReloadMode.STANDARD, Verdict.DONE)]
    assert (
        w.reloads.running_mode() is ReloadMode.CHAIN
    )  # the mode queued before the execve runs now


def test_the_execve_is_handed_the_queued_modes() -> None:
    w = wing()
    w.reloads.request(ReloadMode.CHAIN)
    w.reloads.request(ReloadMode.WORKERS)
    w.reloads.exec_in_place()
    assert w.execs == [[ReloadMode.WORKERS]]
    assert w.notifier.said[-1] == ("STATUS", "standard reload: re-executing the master")


def test_retired_workers_get_sigterm_only_after_their_replacements_are_ready() -> None:
    w = wing()
    old = w.pool.serving()
    w.reloads.request(ReloadMode.WORKERS)
    assert w.kernel.sent == []
    bring_up(w)
    assert [signals_to(w.kernel, worker) for worker in old] == [[signal.SIGTERM]] * 2
