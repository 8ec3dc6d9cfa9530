"""Drive worker/http_handler.py's HttpHandler over a scripted connection, without a socket.

`ScriptedChannel` stands in for worker/channel.py's Channel: the test decides which
bytes have arrived when. `exchange(app, chunks)` delivers `chunks` one at a time,
lets the handler take its turn after each (as serve.py does when the socket is
readable), and hands a body read the next chunk when it waits (as the kernel would
once the client sent it). After the last chunk the client half-closes. It returns
what the client received; `responses` splits that into (status, body) pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sockactd.config.model import Config
from sockactd.protocols.wsgi import wsgi_keys
from sockactd.worker.board import Board
from sockactd.worker.connection import Context, Next
from sockactd.worker.http_handler import HttpHandler
from sockactd.worker.serve import step

__all__ = ["ScriptedChannel", "exchange", "responses"]

App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ScriptedChannel:
    """The Channel interface over a list of chunks the client sends, in order."""

    fd = -1
    tcp = False
    peer = ("192.0.2.1", "4000")

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = list(chunks)
        self._buffer = b""  # arrived, not read yet
        self.eof = False
        self.sent = bytearray()
        self.closed = False

    def deliver(self) -> bool:
        """The next chunk arrives; False (and end of stream) once all have."""
        if not self._chunks:
            self.eof = True
            return False
        self._buffer += self._chunks.pop(0)
        return True

    def readable(self) -> bool:
        return bool(self._buffer) or self.eof

    def recv_nowait(self) -> bytes | None:
        data, self._buffer = self._buffer, b""
        if data or self.eof:
            return data
        return None

    def recv_wait(self, deadline: object = None) -> bytes:
        if not self._buffer:
            self.deliver()
        return self.recv_nowait() or b""

    def send(self, data: bytes) -> None:
        self.sent += data

    def send_parts(self, head: bytes, body: bytes, last: bool = False) -> None:
        self.sent += head + body

    def nodelay(self) -> None:
        pass

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        raise AssertionError("not used by these tests")

    def close(self) -> None:
        self.closed = True


def exchange(app: App, chunks: Sequence[bytes], **settings: Any) -> bytes:
    """What the client receives after sending `chunks`, each when the last was handled."""
    config = Config(**({"keepalive_timeout": 5.0} | settings))
    board = Board.create()
    try:
        ctx = Context(app, config, board)
        base = wsgi_keys("http", False, False)
        base["SERVER_NAME"], base["SERVER_PORT"] = "localhost", "80"
        channel = ScriptedChannel(chunks)
        handler = HttpHandler(ctx, channel, base)  # type: ignore[arg-type]
        while not channel.closed:
            if not channel.readable():
                channel.deliver()
            if step(handler) is Next.CLOSE:
                channel.close()
        return bytes(channel.sent)
    finally:
        board.close()


def responses(received: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each final response in `received`, 1xx left out.

    Content-Length framing only, as every response of tests/apps/environ_echo.py and
    every error response is; not for answers to HEAD.
    """
    found = []
    rest = received
    while rest:
        head, _, rest = rest.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        if status >= 200:
            found.append((status, rest[:length]))
        rest = rest[length:]
    return found
