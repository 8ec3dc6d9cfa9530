"""The standard reload through the reload queue, over the fake kernel: pre-flight, then execve.

master/reloads.py is the standard reload's host: it spawns `sockactd --check` through
Kernel.spawn, watches the pre-flight's pidfd in the master's loop, kills it past
ready-timeout, and on success re-executes the master through master/handover.py and
Kernel.execve. Here the fake kernel's pidfd is a pipe the test closes when it says the
pre-flight exited, and the fake clock moves only when the test moves it; nothing forks,
nothing sleeps. The fake execve fails as a real one that returns does.
"""

from __future__ import annotations

import os
import signal
import sys

import pytest

from sockactd.master.handover import ExecPlan, Handover, exec_in_place
from sockactd.master.phase import Phase, StopRequested
from sockactd.master.reloads import ReloadResult, Verdict
from sockactd.modes import ReloadMode
from sockactd.pool import WorkerState
from sockactd.systemd.activation import HANDOVER_ENV
from tests.unit.master.fakes import Spawned, exit_worker, signals_to
from tests.unit.master.test_reloads import LAZY, Wing, wing

FAILED = 1 << 8  # wait status of `exit 1`
KILLED = signal.SIGKILL.value  # wait status of a process killed by SIGKILL
TRACEBACK = (
    b"Traceback (most recent call last):\n"
    b'  File "/srv/shop/app.py", line 3, in <module>\n'
    b"    import shop.views\n"
    b"ModuleNotFoundError: No module named 'shop.views'\n"
)


def standard(argv: list[str] = LAZY) -> Wing:
    """A serving master's reload queue whose execve goes, as the master's does, through
    handover.exec_in_place to the kernel (the record here carries no workers)."""
    w = wing(argv)

    def reexec(queued: list[ReloadMode]) -> None:
        record = Handover(
            generation=w.pool.generation,
            workers=(),
            control_fd=None,
            waiting_fds=(),
            queued=tuple(queued),
            started_wall=0.0,
            tally={},
        )
        plan = ExecPlan([], None, argv, os.getcwd(), None, lambda: None, w.kernel)
        exec_in_place(record, plan)

    w.reloads.reexec = reexec
    return w


def preflight(w: Wing) -> Spawned:
    (spawned,) = w.kernel.spawned
    return spawned


def preflight_exits(w: Wing, status: int, output: bytes = b"") -> None:
    """The pre-flight ends; the master's loop sees its pidfd readable and reaps it."""
    w.kernel.exit_spawned(preflight(w).pid, status, output)
    assert w.reloads.loop.run_once(0) == 1


def old_generation_serves(w: Wing) -> bool:
    old = w.pool.serving(generation=1)
    return (
        w.pool.generation == 1
        and len(old) == 2
        and all(signals_to(w.kernel, worker) == [] for worker in old)
        and w.pool.booting() == []
        and w.phase.current is Phase.SERVING
    )


def test_the_pre_flight_runs_through_the_kernel_and_its_success_re_executes_the_master(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("SHOP_DSN", "postgres:///shop")
    w = standard()
    heard: list[ReloadResult] = []
    assert w.reloads.request(ReloadMode.STANDARD, heard.append) is None
    spawned = preflight(w)
    assert spawned.argv == [sys.executable, "-m", "sockactd", "--check", *LAZY]
    assert spawned.cwd == w.reloads.reconfigure.start_dir
    assert spawned.env["SHOP_DSN"] == "postgres:///shop"
    assert not {"NOTIFY_SOCKET", "LISTEN_FDS", "WATCHDOG_USEC"} & set(spawned.env)  # not systemd's
    assert w.phase.current is Phase.RELOADING
    assert w.notifier.said == [("RELOADING", "standard reload: checking new code")]
    assert w.reloads.progress() == "standard reload: checking new code"
    w.reloads.request(ReloadMode.WORKERS)  # asked for meanwhile: queued
    assert w.kernel.execs == [] and heard == []  # nothing is committed while it runs
    preflight_exits(w, 0, b"configuration and application load\n")
    ((argv, env),) = w.kernel.execs
    assert argv == [sys.executable, "-m", "sockactd", *LAZY]
    record = Handover.from_json(env[HANDOVER_ENV])
    assert (record.generation, record.queued) == (1, (ReloadMode.WORKERS,))
    assert ("STATUS", "standard reload: re-executing the master") in w.notifier.said
    assert all(signals_to(w.kernel, old) == [] for old in w.pool)  # the new image adopts them


def test_an_execve_that_returns_aborts_and_the_old_generation_keeps_serving() -> None:
    w = standard()
    heard: list[ReloadResult] = []
    w.reloads.request(ReloadMode.STANDARD, heard.append)
    preflight_exits(w, 0)
    assert len(w.kernel.execs) == 1
    assert [(r.mode, r.verdict) for r in heard] == [(ReloadMode.STANDARD, Verdict.ABORTED)]
    assert "execve of the new image failed" in heard[0].message
    assert old_generation_serves(w)


def test_a_pre_flight_that_fails_aborts_says_why_and_the_old_generation_keeps_serving() -> None:
    w = standard()
    told: list[str] = []
    w.reloads.on_preflight_failed = told.append  # the master watches the files it names
    heard: list[ReloadResult] = []
    w.reloads.request(ReloadMode.STANDARD, heard.append)
    w.reloads.request(ReloadMode.WORKERS)  # queued behind it
    preflight_exits(w, FAILED, TRACEBACK)
    assert [(r.mode, r.verdict, r.generation) for r in heard] == [
        (ReloadMode.STANDARD, Verdict.ABORTED, 1)
    ]
    message = heard[0].message
    assert message.startswith("standard reload aborted: new configuration or application failed")
    assert "No module named 'shop.views'" in message  # the last lines of its output
    assert message.endswith("generation 1 keeps serving")
    assert ("READY", message) in w.notifier.said  # systemd hears why
    assert told == [TRACEBACK.decode()]  # the whole traceback, once
    assert w.kernel.execs == []
    assert w.tally.reloads[ReloadMode.STANDARD, "aborted"] == 1
    assert w.reloads.last == heard[0]
    # the old generation serves on; the queued reload starts as the aborted one ends
    assert w.reloads.running_mode() is ReloadMode.WORKERS
    assert len(w.pool.serving(generation=1)) == 2
    assert all(signals_to(w.kernel, old) == [] for old in w.pool.serving(generation=1))


@pytest.mark.parametrize("status", [KILLED, 0], ids=["killed", "done-as-it-was-killed"])
def test_a_pre_flight_past_ready_timeout_is_killed_and_the_reload_aborts(status: int) -> None:
    w = standard([*LAZY, "--ready-timeout", "5"])
    told: list[str] = []
    w.reloads.on_preflight_failed = told.append
    heard: list[ReloadResult] = []
    w.reloads.request(ReloadMode.STANDARD, heard.append)
    pid = preflight(w).pid
    assert w.reloads.next_deadline() == w.kernel.now + 5  # the master's loop wakes by then
    w.kernel.now += 4.9
    w.reloads.check_deadline(w.kernel.now)
    assert w.kernel.sent == []
    w.kernel.now += 0.1
    w.reloads.check_deadline(w.kernel.now)
    assert w.kernel.sent == [(pid, signal.SIGKILL)]
    assert w.reloads.next_deadline() is None  # killed once; its exit ends the reload
    w.reloads.check_deadline(w.kernel.now + 1)
    assert w.kernel.sent == [(pid, signal.SIGKILL)]
    assert heard == []
    preflight_exits(w, status, b"importing shop.settings\n")
    assert [r.verdict for r in heard] == [Verdict.ABORTED]
    assert (
        "the check did not finish within 5s (ready-timeout); "
        "its last output: importing shop.settings"
    ) in heard[0].message
    assert told == []  # no traceback to watch files of
    assert w.kernel.execs == []
    assert old_generation_serves(w)


def test_with_drain_first_the_old_workers_drain_after_the_pre_flight_then_the_master_execs() -> (
    None
):
    w = standard([*LAZY, "--drain-first"])
    w.reloads.request(ReloadMode.STANDARD)
    old = list(w.pool)
    assert all(signals_to(w.kernel, worker) == [] for worker in old)  # not before the check
    preflight_exits(w, 0)
    assert [signals_to(w.kernel, worker) for worker in old] == [[signal.SIGTERM]] * 2
    assert all(worker.state is WorkerState.DRAINING for worker in old)
    assert w.reloads.pauses_respawn() and w.kernel.execs == []
    assert w.reloads.progress() == "standard reload: draining old workers"
    for worker in old:
        exit_worker(w.pool, w.kernel, worker)
        w.reloads.on_exit(worker)
    assert len(w.kernel.execs) == 1


def test_a_stop_during_the_pre_flight_kills_it_and_drops_the_reload() -> None:
    w = standard()
    heard: list[ReloadResult] = []
    w.reloads.request(ReloadMode.STANDARD, heard.append)
    pid = preflight(w).pid
    w.phase.move(StopRequested(graceful=True))
    w.reloads.fail_all("the server is stopping")
    assert w.kernel.sent == [(pid, signal.SIGKILL)]
    assert [(r.verdict, r.message) for r in heard] == [
        (Verdict.DROPPED, "standard reload not done: the server is stopping")
    ]
    preflight_exits(w, KILLED)  # reaped when it goes; nothing more happens
    assert len(heard) == 1 and w.kernel.execs == []
    assert w.reloads.next_deadline() is None
