"""A worker whose status pipe carries garbage: the master kills that worker and goes on.

Real pipes and a real selector; the kernel (fork, kill, reap) is the fake one.
Before the fix an unknown kind byte raised KeyError out of `FrameReader.feed`,
through the master's loop: one garbled pipe stopped the whole server.
"""

from __future__ import annotations

import logging
import os
import signal
import struct
from collections.abc import Iterator

import pytest

from sockactd.master.channels import WorkerChannels
from sockactd.pool import Worker, WorkerPool, WorkerState
from sockactd.worker.board import Board
from sockactd.worker.status import Frame, FrameKind, write_frame
from tests.unit.master.fakes import FakeKernel, fork_with_pipe, make_loop, signals_to


class Pipes:
    """Workers with real status pipes, wired to channels as master.py wires them."""

    def __init__(self) -> None:
        self.kernel = FakeKernel()
        self.loop = make_loop()
        self.writers: dict[int, int] = {}
        self.frames: list[tuple[Worker, Frame]] = []
        self.exits: list[tuple[Worker, WorkerState]] = []
        self.pool = WorkerPool(self.kernel, self.spawn, size=2, ready_timeout=60.0)
        self.channels = WorkerChannels(self.loop, self.pool, self.on_frame, self.on_exit)

    def spawn(self, generation: int) -> tuple[int, int, Board]:
        pid, read_fd = fork_with_pipe(self.kernel, self.writers)
        return pid, read_fd, Board.create()

    def on_frame(self, worker: Worker, frame: Frame) -> None:
        self.frames.append((worker, frame))
        if frame.kind is FrameKind.READY:
            self.pool.mark_ready(worker)

    def on_exit(self, worker: Worker, state: WorkerState, status: int) -> None:
        self.exits.append((worker, state))

    def run_until_quiet(self) -> None:
        while self.loop.run_once(0):
            pass

    def close(self) -> None:
        for worker in list(self.pool):
            self.pool.forget(worker)
        for fd in self.writers.values():
            os.close(fd)


@pytest.fixture
def pipes() -> Iterator[Pipes]:
    pipes = Pipes()
    yield pipes
    pipes.close()


GARBAGE = [
    pytest.param(b"X\x00\x00\x00\x00", "unknown kind byte b'X'", id="unknown-kind"),
    pytest.param(b"GET / HTTP/1.1\r\n", "unknown kind byte b'G'", id="text"),
    pytest.param(struct.pack(">cI", b"F", 2**31), "2147483648 bytes", id="huge-length"),
]


@pytest.mark.parametrize(("garbage", "named"), GARBAGE)
def test_a_garbled_status_pipe_kills_that_worker_and_the_others_serve_on(
    pipes: Pipes, garbage: bytes, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    garbled, other = pipes.pool.spawn(), pipes.pool.spawn()
    write_frame(pipes.writers[garbled.pid], FrameKind.READY)
    os.write(pipes.writers[garbled.pid], garbage + b"more bytes after it")
    write_frame(pipes.writers[other.pid], FrameKind.READY)
    with caplog.at_level(logging.ERROR):
        pipes.run_until_quiet()  # before the fix: KeyError out of the loop
    # the frame before the garbage was read; nothing after it was
    assert [(w, f.kind) for w, f in pipes.frames] == [
        (garbled, FrameKind.READY),
        (other, FrameKind.READY),
    ]
    assert signals_to(pipes.kernel, garbled) == [signal.SIGKILL]
    assert signals_to(pipes.kernel, other) == []
    (line,) = [r.getMessage() for r in caplog.records]
    assert f"worker {garbled.pid} " in line and named in line, line
    # the other worker is still heard
    write_frame(pipes.writers[other.pid], FrameKind.DRAINING, "SIGTERM")
    os.write(pipes.writers[garbled.pid], b"R\x00\x00\x00\x00")  # the garbled one is not
    pipes.run_until_quiet()
    assert pipes.frames[2:] == [(other, Frame(FrameKind.DRAINING, "SIGTERM"))]
    # its exit is reaped as any other: read_status does not kill or log it a second time
    pipes.kernel.exited[garbled.pid] = signal.SIGKILL
    pipes.channels.reap_all()
    assert pipes.exits == [(garbled, WorkerState.SERVING)]
    assert list(pipes.pool) == [other]
    assert len(caplog.records) == 1 and len(signals_to(pipes.kernel, garbled)) == 1
