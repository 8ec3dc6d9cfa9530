"""The status pipe: how a worker tells the master it is ready, or why it failed.

Each worker gets one pipe, created by the master before fork; the worker holds
the write end, the master reads the other end from its selector. Frames are
one kind byte, a 4-byte big-endian length and a UTF-8 payload:

    R  ready: the app is imported and the worker is about to accept
    F  boot failed: payload is the traceback text, the worker exits next
    D  draining: the worker stopped accepting (it only finishes what it has);
       payload is why: "SIGTERM", or "reload-on-rss: ..." when it stopped on its own
    M  modules (py-autoreload only): source files of modules it imported that it has
       not reported yet, one path a line; sent before R, and after a request that
       imported something new

End of file without an R means the worker died while booting. Bytes that are
not a frame (an unknown kind byte, a length beyond the 60 000 bytes a worker
ever writes) break the pipe for good: `FrameReader.error` says what was wrong,
and the master kills that worker (master/channels.py, Rule 3). Per-request
progress does not go through this pipe (see board.py): writing here on every
request would cost a system call each.
"""

from __future__ import annotations

import os
import struct

from sockactd.symbol import Symbol

TYPE_CHECKING = False  # typing is not imported at run time: cold start
if TYPE_CHECKING:
    from typing import ClassVar

__all__ = ["Frame", "FrameKind", "FrameReader", "write_frame"]

_HEADER = struct.Struct(">cI")
_MAX_PAYLOAD = 60_000  # write_frame cuts longer texts


class FrameKind(Symbol):
    """The kind byte of a frame."""

    READY: ClassVar[FrameKind]
    BOOT_FAILED: ClassVar[FrameKind]
    DRAINING: ClassVar[FrameKind]
    MODULES: ClassVar[FrameKind]
    value: bytes


FrameKind.READY = FrameKind("READY", b"R")
FrameKind.BOOT_FAILED = FrameKind("BOOT_FAILED", b"F")
FrameKind.DRAINING = FrameKind("DRAINING", b"D")
FrameKind.MODULES = FrameKind("MODULES", b"M")
_KINDS = {kind.value: kind for kind in FrameKind.members()}


class Frame:
    """One frame read from the pipe."""

    __slots__ = ("kind", "text")

    def __init__(self, kind: FrameKind, text: str = "") -> None:
        self.kind = kind
        self.text = text

    def __eq__(self, other: object) -> bool:
        if type(other) is not Frame:
            return NotImplemented
        return (self.kind, self.text) == (other.kind, other.text)

    def __hash__(self) -> int:
        return hash((self.kind, self.text))

    def __repr__(self) -> str:
        return f"Frame({self.kind!r}, {self.text!r})"


def write_frame(fd: int, kind: FrameKind, text: str = "") -> None:
    """Write one frame (blocking). Called by the worker only."""
    payload = text.encode("utf-8", "replace")[:_MAX_PAYLOAD]
    data = _HEADER.pack(kind.value, len(payload)) + payload
    while data:
        written = os.write(fd, data)
        data = data[written:]


class FrameReader:
    """Sans-IO reassembly of frames from whatever bytes the pipe gave.

    At the first bytes that are not a frame, `error` says why and the reader
    stops: `feed` returns the frames before them, then nothing ever again.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.error: str | None = None

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        if self.error is not None:
            return frames
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            kind_byte, size = _HEADER.unpack_from(self._buffer)
            kind = _KINDS.get(kind_byte)
            if kind is None or size > _MAX_PAYLOAD:
                self.error = (
                    f"unknown kind byte {kind_byte!r}"
                    if kind is None
                    else f"a {kind.name} frame of {size} bytes (at most {_MAX_PAYLOAD})"
                )
                self._buffer.clear()
                break
            if len(self._buffer) < _HEADER.size + size:
                break
            payload = bytes(self._buffer[_HEADER.size : _HEADER.size + size])
            del self._buffer[: _HEADER.size + size]
            frames.append(Frame(kind, payload.decode("utf-8", "replace")))
        return frames
