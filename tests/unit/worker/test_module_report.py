"""worker/module_report.py: a worker reports each module file once, in frames that fit."""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import select
import sys
import termios
import threading
import types
from collections.abc import Iterator

import pytest

from sockactd.worker.module_report import ModuleReporter, chunks, reporting
from sockactd.worker.status import FrameKind, FrameReader, write_frame
from tests.support import wait_until


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    yield read_fd, write_fd
    os.close(read_fd)
    os.close(write_fd)


def reported(read_fd: int) -> list[str]:
    try:
        data = os.read(read_fd, 1 << 20)
    except BlockingIOError:
        return []
    frames = FrameReader().feed(data)
    assert {frame.kind for frame in frames} == {FrameKind.MODULES}
    return [path for frame in frames for path in frame.text.splitlines()]


def test_each_file_once_and_nothing_when_nothing_was_imported(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    reporter = ModuleReporter(write_fd)
    reporter.report_new()
    first = reported(read_fd)
    assert os.__file__ in first and len(first) == len(set(first))
    reporter.report_new()
    assert reported(read_fd) == []  # sys.modules did not grow
    module = types.ModuleType("sockactd_test_lazy")
    module.__file__ = "/srv/app/lazy.py"
    sys.modules[module.__name__] = module
    try:
        reporter.report_new()
        assert reported(read_fd) == ["/srv/app/lazy.py"]
    finally:
        del sys.modules[module.__name__]


def test_the_app_reports_what_a_request_imported(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    reporter = ModuleReporter(write_fd)
    reporter.report_new()
    reported(read_fd)

    def app(environ: object, start_response: object) -> list[bytes]:
        module = types.ModuleType("sockactd_test_request")
        module.__file__ = "/srv/app/during_request.py"
        sys.modules[module.__name__] = module
        return [b"ok"]

    try:
        assert reporting(app, reporter)({}, None) == [b"ok"]
        assert reported(read_fd) == ["/srv/app/during_request.py"]
    finally:
        del sys.modules["sockactd_test_request"]


def test_chunks_stay_under_the_limit() -> None:
    paths = [f"/srv/app/module_{n:04d}.py" for n in range(1000)]
    texts = chunks(paths, limit=1000)
    assert all(len(text.encode()) <= 1000 for text in texts)
    assert [p for text in texts for p in text.split("\n")] == paths


def test_every_frame_is_one_atomic_pipe_write() -> None:
    paths = [f"/srv/app/{'deep/' * 20}module_{n:04d}.py" for n in range(300)]
    for text in chunks(paths):
        assert 5 + len(text.encode()) <= select.PIPE_BUF  # kind byte and length, then paths


def test_the_drain_confirmation_never_lands_inside_a_report(pipe: tuple[int, int]) -> None:
    """A report longer than PIPE_BUF (one path that long) is not one atomic write.

    The pipe is full, as when the master is slow to read: the report's first bytes merge
    into the last page and the rest waits for room. A DRAINING frame written then (the
    loop thread's, while a handler thread reports) must wait for the report's end; written
    straight to the pipe, it merged into the same page, inside the report's frame.
    """
    read_fd, write_fd = pipe
    reporter = ModuleReporter(write_fd)
    fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 1 << 20)  # room for what is imported already
    reporter.report_new()
    reported(read_fd)
    fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 2 * 4096)  # two pages
    write_frame(write_fd, FrameKind.MODULES, "x" * (4096 - 5))  # the first page, full
    write_frame(write_fd, FrameKind.READY)  # both pages used, room left in the last one
    module = types.ModuleType("sockactd_test_deep")
    module.__file__ = "/" + "d" * 4094  # a path of PATH_MAX - 1 bytes
    sys.modules[module.__name__] = module
    report = threading.Thread(target=reporter.report_new)
    drain = threading.Thread(target=reporter.send, args=(FrameKind.DRAINING, "SIGTERM"))
    try:
        report.start()
        wait_until(lambda: _unread(read_fd) > 4096 + 5, 5, "the report to wait for room")
        drain.start()
        drain.join(0.5)  # straight to the pipe it was done at once; through the reporter not
        data = bytearray()
        while report.is_alive() or drain.is_alive() or _unread(read_fd):
            select.select([read_fd], [], [], 0.1)
            with contextlib.suppress(BlockingIOError):
                data += os.read(read_fd, 65536)
    finally:
        report.join(5)
        drain.join(5)
        del sys.modules[module.__name__]
    frames = [(frame.kind, frame.text) for frame in FrameReader().feed(bytes(data))]
    assert frames == [
        (FrameKind.MODULES, "x" * 4091),
        (FrameKind.READY, ""),
        (FrameKind.MODULES, module.__file__),
        (FrameKind.DRAINING, "SIGTERM"),
    ]


def _unread(fd: int) -> int:
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]
