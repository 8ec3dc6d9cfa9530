"""A fake kernel and spawner: the master's pool and reload strategies without fork.

The test decides what the world did (which worker became ready, which died);
the fake records what the code asked for (spawns, signals).
"""

from __future__ import annotations

import errno
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from sockactd.pool import Worker, WorkerPool
from sockactd.worker.board import Board


@dataclass
class FakeKernel:
    next_pid: int = 1000
    now: float = 100.0
    sent: list[tuple[int, signal.Signals]] = field(default_factory=list)
    exited: dict[int, int] = field(default_factory=dict)
    spawned: list[tuple[int, list[str]]] = field(default_factory=list)  # pid, argv
    execs: list[list[str]] = field(default_factory=list)

    def fork(self) -> int:
        self.next_pid += 1
        return self.next_pid

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: str, output: int) -> int:
        self.spawned.append((self.fork(), list(argv)))
        return self.next_pid

    def execve(self, path: str, argv: Sequence[str], env: Mapping[str, str]) -> NoReturn:
        self.execs.append(list(argv))
        raise OSError(errno.ENOSYS, "the fake kernel does not exec")  # as a failed execve

    def kill(self, pid: int, sig: signal.Signals) -> None:
        self.sent.append((pid, sig))

    def reap(self, pid: int) -> int | None:
        return self.exited.pop(pid, None)

    def pidfd_open(self, pid: int) -> int | None:
        return None

    def monotonic(self) -> float:
        return self.now


@dataclass
class FakeHost:
    worker_reload_mercy: float = 30.0
    preflights: int = 0
    execs: int = 0

    def start_preflight(self) -> None:
        self.preflights += 1

    def exec_in_place(self) -> None:
        self.execs += 1


def make_pool(size: int = 2) -> tuple[WorkerPool, FakeKernel]:
    kernel = FakeKernel()
    boards: list[Board] = []

    def spawner(generation: int) -> tuple[int, int, Board]:
        board = Board.create()
        boards.append(board)
        return kernel.fork(), -1, board

    pool = WorkerPool(kernel, spawner, size=size, ready_timeout=10.0)
    return pool, kernel


def exit_worker(pool: WorkerPool, kernel: FakeKernel, worker: Worker, status: int = 0) -> None:
    kernel.exited[worker.pid] = status
    # forget() closes the status fd; -1 is not a real fd, so bypass by clearing it first
    worker.status_fd = -1
    assert pool.reap(worker) == status


def signals_to(kernel: FakeKernel, worker: Worker) -> list[signal.Signals]:
    return [sig for pid, sig in kernel.sent if pid == worker.pid]
