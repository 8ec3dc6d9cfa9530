"""worker/module_report.py: a worker reports each module file once, in frames that fit."""

from __future__ import annotations

import os
import select
import sys
import types
from collections.abc import Iterator

import pytest

from sockactd.worker.module_report import ModuleReporter, chunks, reporting
from sockactd.worker.status import FrameKind, FrameReader


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
