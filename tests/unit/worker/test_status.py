"""The status pipe's frames: written by a worker, reassembled by the master."""

from __future__ import annotations

import os

import pytest

from sockactd.worker.status import Frame, FrameKind, FrameReader, write_frame


@pytest.mark.parametrize(
    ("frames", "chunk"),
    [
        ([Frame(FrameKind.READY)], 1),
        ([Frame(FrameKind.READY), Frame(FrameKind.DRAINING)], 3),
        ([Frame(FrameKind.BOOT_FAILED, "Traceback\n  caf\u00e9\n")], 1000),
        ([Frame(FrameKind.BOOT_FAILED, "x" * 70_000)], 4096),  # cut to 60 000 bytes
    ],
)
def test_frames_survive_the_pipe_in_any_chunking(frames: list[Frame], chunk: int) -> None:
    read_fd, write_fd = os.pipe()
    try:
        for frame in frames:
            write_frame(write_fd, frame.kind, frame.text)
        os.close(write_fd)
        write_fd = -1
        data = b""
        while piece := os.read(read_fd, 65536):
            data += piece
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    reader = FrameReader()
    got: list[Frame] = []
    for start in range(0, len(data), chunk):
        got += reader.feed(data[start : start + chunk])
    assert got == [Frame(f.kind, f.text[:60_000]) for f in frames]


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (Frame(FrameKind.READY), Frame(FrameKind.READY, ""), True),
        (Frame(FrameKind.READY), Frame(FrameKind.DRAINING), False),
        (Frame(FrameKind.BOOT_FAILED, "a"), Frame(FrameKind.BOOT_FAILED, "b"), False),
    ],
)
def test_frame_equality(left: Frame, right: Frame, equal: bool) -> None:
    assert (left == right) is equal
    assert (hash(left) == hash(right)) or not equal


def test_garbage_stops_the_reader_for_good_after_the_frames_before_it() -> None:
    reader = FrameReader()
    assert reader.feed(b"R\x00\x00\x00\x00Z\x00\x00\x00\x00") == [Frame(FrameKind.READY)]
    assert reader.error == "unknown kind byte b'Z'"
    assert reader.feed(b"R\x00\x00\x00\x00") == []  # a frame after garbage is not trusted
    assert reader.error == "unknown kind byte b'Z'"


def test_a_length_no_worker_writes_is_garbage_before_its_bytes_arrive() -> None:
    reader = FrameReader()
    assert reader.feed(b"M\x00\x00\xea\x61") == []  # 60 001 bytes announced
    assert reader.error == "a MODULES frame of 60001 bytes (at most 60000)"
