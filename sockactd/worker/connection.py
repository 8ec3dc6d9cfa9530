"""What every protocol's connection handler shares: the worker's context, the read step, Next.

serve.py owns the loop and calls `handler.on_readable()` whenever the
connection's socket is readable (inline, or on a handler thread). The handler
reads what is there *without waiting* (`ConnectionHandler.on_readable`, the same
for every protocol) and gives the bytes to its protocol's `on_bytes`, which either
serves every complete request it has, or answers `Next.PARK` (wait in the
selector for more bytes) or `Next.CLOSE`. Only once a request head is complete
does a handler wait on the socket (body reads, response writes, bounded by
socket-timeout), so a client trickling its head in never holds a worker or a thread.

The protocols themselves are in http_handler.py and uwsgi_handler.py, found by the
socket's protocol name in handlers.py. This module does not accept, select, or
count time for idle connections: serve.py does.
"""

from __future__ import annotations

import time

from sockactd.protocols.wsgi import ClientDisconnected
from sockactd.symbol import Symbol
from sockactd.worker.channel import BodyDeadline
from sockactd.worker.exchange import log_access, run_app

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from _socket import socket as RawSocket
    from collections.abc import Callable
    from typing import Any, ClassVar, Final

    from sockactd.config.model import Config
    from sockactd.worker.board import Board
    from sockactd.worker.channel import Channel
    from sockactd.worker.exchange import Response, WSGIApp
    from sockactd.worker.memory import RssLimit


__all__ = ["CLOSE", "PARK", "ConnectionHandler", "Context", "Next", "recv_body_wait"]


class Next(Symbol):
    """What the loop does with a connection after a handler's turn."""

    PARK: ClassVar[Next]  # wait in the selector for the next bytes
    CLOSE: ClassVar[Next]


Next.PARK = Next("PARK", "park")
Next.CLOSE = Next("CLOSE", "close")


# Members as module constants: Next.X is a class attribute lookup (~50 ns in 3.11).
PARK: Final = Next.PARK
CLOSE: Final = Next.CLOSE


class Context:
    """What every handler of a worker shares. `closing` makes responses say Connection: close."""

    __slots__ = (
        "app",
        "apply_forwarded",
        "board",
        "closing",
        "config",
        "memory",
        "served",
        "stop_reason",
    )

    def __init__(
        self,
        app: WSGIApp,
        config: Config,
        board: Board,
        apply_forwarded: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.app = app
        self.config = config
        self.board = board
        self.apply_forwarded = apply_forwarded
        self.closing = False
        self.served = 0  # requests this worker began, for its stop log line
        self.stop_reason = ""  # why this worker stops on its own, for its log and the master
        self.memory: RssLimit | None = None  # reload-on-rss, set by serve()

    def run(self, environ: dict[str, Any], response: Response) -> None:
        """Run the app on one request, with what every protocol does around it: count it,
        check reload-on-rss after it, write its access log line."""
        started = time.monotonic() if self.config.access_log else 0.0
        self.served += 1
        run_app(self.app, environ, response, self.board)
        if self.memory is not None:
            self._check_memory()
        if started:
            log_access(environ, response, started)

    def body_deadline(self) -> BodyDeadline | None:
        """The bound on waiting for a request body (None: only socket-timeout per read)."""
        config = self.config
        if not config.body_timeout:
            return None
        return BodyDeadline(config.body_timeout, config.body_min_rate)

    def _check_memory(self) -> None:
        """After a request: past reload-on-rss, stop accepting (the master replaces us)."""
        assert self.memory is not None
        reason = self.memory.exceeded()
        if reason and not self.closing:
            self.stop_reason = reason
            self.closing = True


class ConnectionHandler:
    """One client connection of one protocol; a subclass says what its bytes mean.

    `base` is the listener's part of the WSGI environ (`base_environ`, made once per
    listener); `parked_at` is when the connection last began to wait for bytes.
    """

    __slots__ = ("base", "channel", "ctx", "parked_at")

    def __init__(self, ctx: Context, channel: Channel, base: dict[str, Any]) -> None:
        self.ctx = ctx
        self.channel = channel
        self.base = base
        self.parked_at = time.monotonic()

    @staticmethod
    def base_environ(sock: RawSocket, tcp: bool, base: dict[str, Any]) -> None:
        """Add to a listener's environ what this protocol takes from the listening socket."""

    def on_readable(self) -> Next:
        """The read step: take what arrived without waiting; end of stream closes."""
        data = self.channel.recv_nowait()
        if data is None:
            return PARK
        if not data:
            return CLOSE
        return self.on_bytes(data)

    def on_bytes(self, data: bytes) -> Next:
        """Serve whatever `data` completes; what to do with the connection next."""
        raise NotImplementedError

    def idle_deadline(self) -> float:
        """When to give up on this parked connection."""
        return self.parked_at + self.ctx.config.header_timeout

    def between_requests(self) -> bool:
        """True when idle after a finished request (keep-alive); a stopping worker may close it."""
        return False

    def movable(self) -> bool:
        """True when another worker of the generation may take this connection over (lobby.py).

        Only when nothing was read from it since its last response (or ever): its next
        request, if any, is still wholly in the kernel, so no parser state crosses processes.
        Every protocol's handler says when that is (tests/unit/worker/test_handlers.py);
        this default keeps a connection where it is.
        """
        return False


def recv_body_wait(
    channel: Channel, deadline: BodyDeadline | None, response: Response, closed: str
) -> bytes:
    """Wait for more of a request body. A miss of the deadline is a 408, the peer's close
    a 400 (`closed` says so in the error); either way the app's read raises."""
    try:
        data = channel.recv_wait(deadline)
    except TimeoutError:
        response.input_status = 408
        raise
    if not data:
        response.input_status = 400
        raise ClientDisconnected(closed)
    return data
