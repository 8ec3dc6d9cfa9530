"""Per-protocol connection handlers: HTTP/1.1 (keep-alive, pipelining) and uwsgi (one request).

serve.py owns the loop and calls `handler.on_readable()` whenever the
connection's socket is readable (inline, or on a handler thread). The handler
reads what is there *without waiting*, and either serves every complete request
it has, or answers `Next.PARK` (wait in the selector for more bytes) or
`Next.CLOSE`. Only once a request head is complete does a handler wait on the
socket (body reads, response writes, bounded by socket-timeout), so a client
trickling its head in never holds a worker or a thread.

This module does not accept, select, or count time for idle connections:
serve.py does.
"""

from __future__ import annotations

import time

from sockactd.errors import ProtocolError
from sockactd.log import get_logger
from sockactd.protocols.http import END, RequestHead, RequestParser
from sockactd.protocols.uwsgi import UwsgiRequestParser, environ_from_vars, parse_packet
from sockactd.protocols.wsgi import (
    EMPTY_INPUT,
    BodyTooLarge,
    ClientDisconnected,
    InputStream,
    http_environ,
)
from sockactd.symbol import Symbol
from sockactd.worker.channel import BodyDeadline
from sockactd.worker.exchange import Response, error_response, log_access, run_app

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, Final, Protocol

    from sockactd.config.model import Config
    from sockactd.protocols.uwsgi import UwsgiHead
    from sockactd.worker.board import Board
    from sockactd.worker.channel import Channel
    from sockactd.worker.exchange import WSGIApp
    from sockactd.worker.memory import RssLimit

    class Handler(Protocol):
        channel: Channel
        parked_at: float

        def on_readable(self) -> Next: ...

        def idle_deadline(self) -> float: ...

        def between_requests(self) -> bool:
            """True when idle after a finished request (keep-alive); a stopping worker may
            close it."""
            ...


__all__ = ["Context", "HttpHandler", "Next", "UwsgiHandler"]

log = get_logger(__name__)

_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_DRAIN_LIMIT: Final = 65536  # unread body up to this size is discarded to keep the connection


class Next(Symbol):
    """What the loop does with a connection after a handler's turn."""

    PARK: ClassVar[Next]  # wait in the selector for the next bytes
    CLOSE: ClassVar[Next]


Next.PARK = Next("PARK", "park")
Next.CLOSE = Next("CLOSE", "close")


# Members as module constants: Next.X is a class attribute lookup (~50 ns in 3.11).
_PARK: Final = Next.PARK
_CLOSE: Final = Next.CLOSE


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
        self.served = 0
        self.stop_reason = ""  # why this worker stops on its own, for its log and the master
        self.memory: RssLimit | None = None  # reload-on-rss, set by serve()

    def count_request(self) -> None:
        self.served += 1
        limit = self.config.max_requests
        if limit and self.served >= limit:
            self.closing = True

    def check_memory(self) -> None:
        """After a request: past reload-on-rss, stop accepting (the master replaces us)."""
        assert self.memory is not None
        reason = self.memory.exceeded()
        if reason and not self.closing:
            self.stop_reason = reason
            self.closing = True


class HttpHandler:
    """An HTTP/1.x connection: parses with protocols.http, serves requests as they complete."""

    __slots__ = ("base", "channel", "ctx", "parked_at", "parser", "requests")

    def __init__(self, ctx: Context, channel: Channel, base: dict[str, Any]) -> None:
        self.ctx = ctx
        self.channel = channel
        self.base = base
        config = ctx.config
        self.parser = RequestParser(config.buffer_size, config.limit_post)
        self.requests = 0
        self.parked_at = time.monotonic()

    def idle_deadline(self) -> float:
        """When to give up on this parked connection."""
        config = self.ctx.config
        if self.requests and not self.parser.in_request:
            return self.parked_at + config.keepalive_timeout
        return self.parked_at + config.header_timeout

    def between_requests(self) -> bool:
        return bool(self.requests) and not self.parser.in_request

    def on_readable(self) -> Next:
        data = self.channel.recv_nowait()
        if data is None:
            return _PARK
        if not data:
            return _CLOSE
        self.parser.feed(data)
        events = self.parser.events
        # Every request parsed before an error is answered, in order; the error only if
        # the connection is still open after them.
        while events:
            event = events.pop(0)
            if type(event) is RequestHead:
                if not self._serve(event):
                    return _CLOSE
            elif type(event) is ProtocolError:
                return self._refuse(event)
            # else: leftovers of a body a previous response drained
        if self.parser.finished:
            return _CLOSE
        return _PARK

    def _refuse(self, exc: ProtocolError) -> Next:
        log.info("bad request from %s: %s", self.channel.peer[0], exc)
        try:
            self.channel.send(error_response(exc.status))
        except OSError:
            pass
        return _CLOSE

    def _keep_alive(self, head: RequestHead) -> bool:
        config = self.ctx.config
        return (
            head.keep_alive
            and not head.upgrade
            and config.keepalive_timeout > 0
            and self.requests < config.keepalive_requests
            and not self.ctx.closing
        )

    def _serve(self, head: RequestHead) -> bool:
        """Serve one request whose head is complete; True to keep the connection."""
        self.requests += 1
        ctx = self.ctx
        response = Response(
            self.channel,
            head_only=head.method == "HEAD",
            chunked_ok=head.version == "1.1",
            keep_alive=self._keep_alive(head),
            http10=head.version == "1.0",
            owner=ctx,
        )
        body = _HttpBody(self, head, response)
        response.body_pending = body.pending
        environ = http_environ(
            self.base, head.method, head.target, head.version, head.headers, self.channel.peer
        )
        environ["wsgi.input"] = EMPTY_INPUT if body.done else InputStream(body.pull)
        if head.chunked:
            environ["wsgi.input_terminated"] = True
        if ctx.apply_forwarded is not None:
            ctx.apply_forwarded(environ)
        started = time.monotonic() if ctx.config.access_log else 0.0
        ctx.count_request()
        run_app(ctx.app, environ, response, ctx.board)
        if ctx.memory is not None:
            ctx.check_memory()
        if started:
            log_access(environ, response, started)
        if response.keep_alive and not body.done:
            response.keep_alive = body.drain()
        self.parked_at = time.monotonic()
        return response.keep_alive


class _HttpBody:
    """The pull side of wsgi.input for one HTTP request: parser events, then the socket."""

    __slots__ = ("conn", "continue_sent", "deadline", "done", "head", "received", "response")

    def __init__(self, conn: HttpHandler, head: RequestHead, response: Response) -> None:
        self.conn = conn
        self.head = head
        self.response = response
        self.done = not head.has_body and self._end_queued()
        self.continue_sent = False
        self.received = 0
        self.deadline: BodyDeadline | None = None  # made at the first wait for the body

    def _end_queued(self) -> bool:
        events = self.conn.parser.events
        if events and events[0] is END:
            events.pop(0)
            return True
        return False

    def pull(self) -> bytes:
        if self.done:
            return b""
        events = self.conn.parser.events
        if not events and self.head.expect_continue and not self.continue_sent:
            self.continue_sent = True
            if not self.response.headers_sent:
                self.conn.channel.send(_CONTINUE)
        while not events:
            self._read_more()
        event = events.pop(0)
        if type(event) is bytes:
            self.received += len(event)
            return event
        if event is END:
            self.done = True
            return b""
        assert isinstance(event, ProtocolError)
        self.response.input_status = event.status
        if event.status == 413:
            raise BodyTooLarge(str(event))
        raise ClientDisconnected(f"bad request body: {event}")

    def _read_more(self) -> None:
        deadline = self.deadline
        if deadline is None:
            deadline = self.deadline = _body_deadline(self.conn.ctx.config)
        try:
            data = self.conn.channel.recv_wait(deadline)
        except TimeoutError:
            self.response.input_status = 408
            raise
        if not data:
            self.response.input_status = 400
            raise ClientDisconnected("client closed the connection before the body ended")
        self.conn.parser.feed(data)  # an error comes out as an event (see pull)

    def pending(self) -> bool:
        """True when unread body makes keeping the connection unsafe or too costly."""
        if self.done or self._end_queued():
            self.done = True
            return False
        head = self.head
        if head.expect_continue and not self.continue_sent:
            return True  # the client may never send the body it announced
        if head.chunked or head.content_length is None:
            return True
        return head.content_length - self.received > _DRAIN_LIMIT

    def drain(self) -> bool:
        """Read and drop the rest of the body; True when the connection can go on."""
        try:
            while not self.done:
                self.pull()
        except OSError:
            return False
        return True


# An HTTP request line sent to a uwsgi socket: its first bytes (a uwsgi head starts with
# modifier1 = 0 and never with an ASCII method).
_HTTP_METHODS = tuple(m.encode() + b" " for m in (
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"))  # fmt: skip
_HTTP_ON_UWSGI_HINT = (
    "HTTP is spoken on sockets named 'http' (FileDescriptorName=http in the socket unit, "
    "or --http-socket); a socket named 'uwsgi' (or --socket) is for uwsgi_pass"
)
_HTTP_ON_UWSGI_BODY = ("This socket speaks the uwsgi protocol, not HTTP. " + _HTTP_ON_UWSGI_HINT
                       + ".\n").encode()  # fmt: skip
_HTTP_ON_UWSGI_REPLY = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(_HTTP_ON_UWSGI_BODY)).encode() + b"\r\n\r\n" + _HTTP_ON_UWSGI_BODY
)


class UwsgiHandler:
    """A uwsgi connection from a front end such as nginx: one request, then close."""

    __slots__ = ("base", "channel", "ctx", "parked_at", "parser", "remainder")

    def __init__(self, ctx: Context, channel: Channel, base: dict[str, Any]) -> None:
        self.ctx = ctx
        self.channel = channel
        self.base = base
        # Made only when the first read did not hold the whole head (see on_readable).
        self.parser: UwsgiRequestParser | None = None
        self.remainder = b""
        self.parked_at = time.monotonic()

    def idle_deadline(self) -> float:
        return self.parked_at + self.ctx.config.header_timeout

    def between_requests(self) -> bool:
        return False  # one request per connection: a parked one still owes its request

    def on_readable(self) -> Next:
        data = self.channel.recv_nowait()
        if data is None:
            return _PARK
        if not data:
            return _CLOSE
        try:
            head = self._head(data)
            if head is None:
                return _PARK
            environ = environ_from_vars(head, self.base)
        except ProtocolError as exc:
            self._refuse(data, exc)
            return _CLOSE
        self._serve(environ)
        return _CLOSE

    def _refuse(self, data: bytes, exc: ProtocolError) -> None:
        """Log a malformed request; HTTP sent here by mistake gets an answer saying so."""
        peer = self.channel.peer[0] or "a client of this UNIX socket"
        if not data.startswith(_HTTP_METHODS):
            log.info("bad uwsgi request from %s: %s", peer, exc)
            return
        line = data.split(b"\r\n", 1)[0][:120].decode("latin-1")
        log.warning("HTTP request %r from %s on a socket that speaks the uwsgi protocol: %s",
                    line, peer, _HTTP_ON_UWSGI_HINT)  # fmt: skip
        try:
            self.channel.send(_HTTP_ON_UWSGI_REPLY)
        except OSError:
            pass  # the client is gone; the log line says it all

    def _head(self, data: bytes) -> UwsgiHead | None:
        parser = self.parser
        if parser is None:
            # nginx writes the whole packet at once, so it is usually all in the first read
            parsed = parse_packet(data, self.ctx.config.buffer_size)
            if parsed is not None:
                head, self.remainder = parsed
                return head
            parser = self.parser = UwsgiRequestParser(self.ctx.config.buffer_size)
        found = parser.feed(data)
        self.remainder = parser.remainder
        return found

    def _serve(self, environ: dict[str, Any]) -> None:
        ctx = self.ctx
        length = environ.get("CONTENT_LENGTH")  # digits or "" (checked by environ_from_vars)
        length = int(length) if length else 0
        response = Response(
            self.channel,
            head_only=environ["REQUEST_METHOD"] == "HEAD",
            chunked_ok=False,
            keep_alive=False,
            uwsgi=True,
        )
        # Bytes still unread when the socket closes turn its FIN into a reset that
        # discards a held-back response: only a request without a body may hold it.
        response.close_follows = not length and not self.remainder and not ctx.config.access_log
        if ctx.config.limit_post and length > ctx.config.limit_post:
            log.info("uwsgi request body of %d bytes over limit-post", length)
            try:
                self.channel.send(error_response(413))
            except OSError:
                pass
            return
        if length:
            body = _UwsgiBody(self.channel, self.remainder, length, response, ctx.config)
            environ["wsgi.input"] = InputStream(body.pull)
        else:
            environ["wsgi.input"] = EMPTY_INPUT
        started = time.monotonic() if ctx.config.access_log else 0.0
        ctx.count_request()
        run_app(ctx.app, environ, response, ctx.board)
        if ctx.memory is not None:
            ctx.check_memory()
        if started:
            log_access(environ, response, started)


class _UwsgiBody:
    """Exactly CONTENT_LENGTH bytes: what followed the vars block, then the socket."""

    __slots__ = ("channel", "deadline", "first", "left", "response")

    def __init__(
        self, channel: Channel, first: bytes, length: int, response: Response, config: Config
    ) -> None:
        self.channel = channel
        self.first = first[:length]
        self.left = length
        self.response = response
        self.deadline = _body_deadline(config)

    def pull(self) -> bytes:
        if self.left <= 0:
            return b""
        if self.first:
            data, self.first = self.first, b""
        else:
            try:
                data = self.channel.recv_wait(self.deadline)
            except TimeoutError:
                self.response.input_status = 408
                raise
            if not data:
                self.response.input_status = 400
                raise ClientDisconnected("front end closed the connection before the body ended")
            data = data[: self.left]
        self.left -= len(data)
        return data


def _body_deadline(config: Config) -> BodyDeadline | None:
    """The bound on waiting for a request body (None: only socket-timeout per read)."""
    if not config.body_timeout:
        return None
    return BodyDeadline(config.body_timeout, config.body_min_rate)
