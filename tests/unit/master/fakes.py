"""A fake kernel and spawner: the master's pool and reload strategies without fork.

The test decides what the world did (which worker became ready, which died, when a
spawned process such as the standard reload's pre-flight exits and what it printed);
the fake records what the code asked for (spawns, signals, execve).
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from sockactd.master.loop import Loop
from sockactd.pool import Worker, WorkerPool
from sockactd.worker.board import Board


@dataclass(frozen=True)
class Spawned:
    """One Kernel.spawn call: what ran, where, with which environment, output to which fd."""

    pid: int
    argv: list[str]
    env: dict[str, str]
    cwd: str
    output: int


@dataclass
class FakeKernel:
    next_pid: int = 1000
    now: float = 100.0
    sent: list[tuple[int, signal.Signals]] = field(default_factory=list)
    exited: dict[int, int] = field(default_factory=dict)
    spawned: list[Spawned] = field(default_factory=list)
    execs: list[tuple[list[str], dict[str, str]]] = field(default_factory=list)  # argv, env
    # A spawned process's "pidfd": the read end of a pipe whose write end closes when it exits.
    _exit_pipes: dict[int, int] = field(default_factory=dict)

    def fork(self) -> int:
        self.next_pid += 1
        return self.next_pid

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: str, output: int) -> int:
        self.spawned.append(Spawned(self.fork(), list(argv), dict(env), cwd, output))
        return self.next_pid

    def exit_spawned(self, pid: int, status: int, output: bytes = b"") -> None:
        """Spawned process `pid` writes `output` and ends with wait status `status`."""
        (spawned,) = [s for s in self.spawned if s.pid == pid]
        os.write(spawned.output, output)
        self.exited[pid] = status
        os.close(self._exit_pipes.pop(pid))  # its pidfd turns readable

    def execve(self, path: str, argv: Sequence[str], env: Mapping[str, str]) -> NoReturn:
        self.execs.append((list(argv), dict(env)))
        raise OSError(errno.ENOSYS, "the fake kernel does not exec")  # as a failed execve

    def kill(self, pid: int, sig: signal.Signals) -> None:
        self.sent.append((pid, sig))

    def reap(self, pid: int) -> int | None:
        return self.exited.pop(pid, None)

    def pidfd_open(self, pid: int) -> int | None:
        """None for a forked worker (the pool watches none); a pipe for a spawned process."""
        if all(s.pid != pid for s in self.spawned):
            return None
        read_end, self._exit_pipes[pid] = os.pipe()
        return read_end

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


# What the fakes opened -- boards of the fake pools (a memfd each), loops (an epoll each):
# conftest.py closes them after each test.
BOARDS: list[Board] = []
LOOPS: list[Loop] = []


def make_board() -> Board:
    board = Board.create()
    BOARDS.append(board)
    return board


def make_loop() -> Loop:
    loop = Loop()
    LOOPS.append(loop)
    return loop


def fork_with_pipe(kernel: FakeKernel, writers: dict[int, int]) -> tuple[int, int]:
    """A fake fork whose worker has a real status pipe, as fork_worker makes one: returns
    (pid, the master's non-blocking read end); the worker's write end goes to writers[pid]."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(read_fd, False)
    pid = kernel.fork()
    writers[pid] = write_fd
    return pid, read_fd


def make_pool(size: int = 2) -> tuple[WorkerPool, FakeKernel]:
    kernel = FakeKernel()

    def spawner(generation: int) -> tuple[int, int, Board]:
        return kernel.fork(), -1, make_board()

    pool = WorkerPool(kernel, spawner, size=size, ready_timeout=10.0)
    return pool, kernel


def exit_worker(pool: WorkerPool, kernel: FakeKernel, worker: Worker, status: int = 0) -> None:
    kernel.exited[worker.pid] = status
    # forget() closes the status fd; -1 is not a real fd, so bypass by clearing it first
    worker.status_fd = -1
    assert pool.reap(worker) == status


def signals_to(kernel: FakeKernel, worker: Worker) -> list[signal.Signals]:
    return [sig for pid, sig in kernel.sent if pid == worker.pid]
