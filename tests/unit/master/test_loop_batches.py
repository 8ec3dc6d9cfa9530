"""Two worker events in one select() batch: a reap, then a ready or a spawn (issue 12, item 1).

The master runs every callback of one batch. When the first tears a worker
down (its status pipe, pidfd and board fds are closed) and a later one forks a
new worker, the kernel hands the new worker the numbers just freed; the dead
worker's entry still waiting in the batch must then be dropped, not read the
new worker's pipe (stealing its READY: a reload that hangs for ready-timeout)
or its board (zeros: a KeyError that killed the master).

Real pipes, memfds and fd numbers; the kernel (fork, reap) is the fake one and
the selector is scripted, so the test decides which entries one batch holds
and in what order -- exactly as epoll builds a batch: keys looked up at
select() time.
"""

from __future__ import annotations

import os
import selectors
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from sockactd.master.channels import WorkerChannels
from sockactd.master.loop import Loop
from sockactd.pool import Worker, WorkerPool, WorkerState
from sockactd.reload.base import Outcome
from sockactd.reload.chain import ChainReload
from sockactd.worker.board import Board
from sockactd.worker.status import Frame, FrameKind, write_frame
from tests.unit.master.fakes import FakeHost, FakeKernel, fork_with_pipe


class ScriptedSelector(selectors.BaseSelector):
    """select() returns the fds the test lists in `batch`, keyed as they are registered now."""

    def __init__(self) -> None:
        self._keys: dict[int, selectors.SelectorKey] = {}
        self.batch: list[int] = []

    @staticmethod
    def _fd(fileobj: Any) -> int:
        return fileobj if isinstance(fileobj, int) else int(fileobj.fileno())

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = self._fd(fileobj)
        if fd in self._keys:
            raise KeyError(f"{fd} is already registered")
        self._keys[fd] = selectors.SelectorKey(fileobj, fd, events, data)
        return self._keys[fd]

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._keys.pop(self._fd(fileobj))

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = [(self._keys[fd], selectors.EVENT_READ) for fd in self.batch if fd in self._keys]
        self.batch = []
        return ready

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._keys


@dataclass
class PidfdKernel(FakeKernel):
    """The fake kernel, with pidfds that are real fds (so their numbers are reused too)."""

    def pidfd_open(self, pid: int) -> int | None:
        return os.eventfd(0, os.EFD_CLOEXEC)


@dataclass
class World:
    """The workers' side of the pipes, and the master's reactions as master.py wires them."""

    kernel: PidfdKernel = field(default_factory=PidfdKernel)
    selector: ScriptedSelector = field(default_factory=ScriptedSelector)
    writers: dict[int, int] = field(default_factory=dict)
    boot_instantly: bool = False  # new workers have READY in their pipe at once
    on_exit_spawn: bool = False  # an exit leads to a spawn in the same callback
    exits: list[tuple[Worker, WorkerState]] = field(default_factory=list)
    strategy: ChainReload | None = None

    def __post_init__(self) -> None:
        self.loop = Loop(self.selector)
        self.pool = WorkerPool(self.kernel, self.spawn, size=3, ready_timeout=60.0)
        self.channels = WorkerChannels(self.loop, self.pool, self.on_frame, self.on_exit)

    def spawn(self, generation: int) -> tuple[int, int, Board]:
        pid, read_fd = fork_with_pipe(self.kernel, self.writers)
        if self.boot_instantly:
            write_frame(self.writers[pid], FrameKind.READY)
        return pid, read_fd, Board.create()

    def on_frame(self, worker: Worker, frame: Frame) -> None:
        assert frame.kind is FrameKind.READY
        self.pool.mark_ready(worker)
        if self.strategy is not None:
            self.strategy.on_ready(self.pool, worker)

    def on_exit(self, worker: Worker, state: WorkerState, status: int) -> None:
        self.exits.append((worker, state))
        if self.strategy is not None:
            self.strategy.on_exit(self.pool, worker)
        if self.on_exit_spawn:
            self.pool.spawn()

    # --- what the workers do -------------------------------------------------------
    def ready(self, worker: Worker) -> None:
        write_frame(self.writers[worker.pid], FrameKind.READY)

    def exit(self, worker: Worker, status: int = 0) -> None:
        self.kernel.exited[worker.pid] = status
        os.close(self.writers.pop(worker.pid))

    def batch(self, *fds: int | None) -> None:
        self.selector.batch = [fd for fd in fds if fd is not None]
        self.loop.run_once(0)

    def close(self) -> None:
        for worker in self.pool:
            self.pool.forget(worker)
        for fd in self.writers.values():
            os.close(fd)


@pytest.fixture
def world() -> Any:
    world = World()
    yield world
    world.close()


def serving(world: World, count: int) -> list[Worker]:
    workers = [world.pool.spawn() for _ in range(count)]
    for worker in workers:
        world.ready(worker)
    world.batch(*(w.status_fd for w in workers))
    assert all(w.state is WorkerState.SERVING for w in workers)
    return workers


def test_reap_then_ready_in_one_batch_drops_the_dead_workers_stale_entry(world: World) -> None:
    old = serving(world, 3)
    world.strategy = chain = ChainReload()
    chain.begin(world.pool, FakeHost())
    (first,) = world.pool.booting(generation=2)
    world.ready(first)
    world.batch(first.status_fd)  # first serves, old[0] is retired, the second step boots
    (second,) = world.pool.booting(generation=2)
    retired = old[0]
    world.boot_instantly = True  # the third step's worker is ready by the time we look
    world.exit(retired)  # old[0] drained and exited ...
    world.ready(second)  # ... while the second step became ready: one batch holds both
    stale_status, stale_pidfd = retired.status_fd, retired.pidfd
    world.batch(stale_pidfd, second.status_fd, stale_status)
    (third,) = world.pool.booting(generation=2)
    # the premise: the third worker got a number the dead one had in this very batch
    assert {stale_status, stale_pidfd} & {third.status_fd, third.pidfd, third.board.fd}
    world.batch(third.status_fd)
    assert third.state is WorkerState.SERVING  # its READY was not eaten by the dead worker
    assert chain.outcome is Outcome.DONE
    assert [w.generation for w in world.pool.serving()] == [2, 2, 2]
    assert world.exits == [(retired, WorkerState.DRAINING)]


def test_reap_then_spawn_in_one_batch_drops_the_dead_workers_stale_entry(world: World) -> None:
    (dead, survivor) = serving(world, 2)
    world.boot_instantly = True
    world.on_exit_spawn = True
    world.exit(dead, status=9)
    stale_status, stale_pidfd = dead.status_fd, dead.pidfd
    world.batch(stale_pidfd, stale_status, survivor.status_fd)
    (new,) = world.pool.booting()
    assert {stale_status, stale_pidfd} & {new.status_fd, new.pidfd, new.board.fd}
    world.batch(new.status_fd)
    assert new.state is WorkerState.SERVING
    assert world.exits == [(dead, WorkerState.SERVING)]
    assert survivor.state is WorkerState.SERVING
