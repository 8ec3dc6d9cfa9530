"""HTTP/1.1 connections: keep-alive, pipelining, request bodies pulled as the app reads.

`HttpHandler.on_bytes` feeds protocols/http.py's parser and serves each request
whose head is complete, in order; every request parsed before a malformed one is
answered before the error. A body is read only when the app reads wsgi.input
(`_HttpBody`), and what it leaves unread is drained when that is cheap, so the
connection can be kept. This module does not accept, select, or frame responses:
serve.py and exchange.py do.
"""

from __future__ import annotations

import time

from sockactd.errors import ProtocolError
from sockactd.log import get_logger
from sockactd.protocols.http import END, RequestHead, RequestParser
from sockactd.protocols.wsgi import (
    EMPTY_INPUT,
    BodyTooLarge,
    ClientDisconnected,
    InputStream,
    http_environ,
)
from sockactd.worker.connection import CLOSE, PARK, ConnectionHandler, recv_body_wait
from sockactd.worker.exchange import Response, error_response

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from _socket import socket as RawSocket
    from typing import Any, Final

    from sockactd.worker.channel import BodyDeadline, Channel
    from sockactd.worker.connection import Context, Next

__all__ = ["HttpHandler"]

log = get_logger(__name__)

_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_DRAIN_LIMIT: Final = 65536  # unread body up to this size is discarded to keep the connection


class HttpHandler(ConnectionHandler):
    """An HTTP/1.x connection: parses with protocols.http, serves requests as they complete."""

    __slots__ = ("parser", "requests")

    def __init__(self, ctx: Context, channel: Channel, base: dict[str, Any]) -> None:
        ConnectionHandler.__init__(self, ctx, channel, base)
        config = ctx.config
        self.parser = RequestParser(config.buffer_size, config.limit_post)
        self.requests = 0

    @staticmethod
    def base_environ(sock: RawSocket, tcp: bool, base: dict[str, Any]) -> None:
        if tcp:
            name = sock.getsockname()
            base["SERVER_NAME"], base["SERVER_PORT"] = str(name[0]), str(name[1])
        else:
            base["SERVER_NAME"], base["SERVER_PORT"] = "localhost", "80"

    def idle_deadline(self) -> float:
        config = self.ctx.config
        if self.requests and not self.parser.in_request:
            return self.parked_at + config.keepalive_timeout
        return self.parked_at + config.header_timeout

    def between_requests(self) -> bool:
        return bool(self.requests) and not self.parser.in_request

    def movable(self) -> bool:
        parser = self.parser  # nothing of a next request parsed, and the connection not done
        return not parser.in_request and not parser.finished and not parser.events

    def on_bytes(self, data: bytes) -> Next:
        self.parser.feed(data)
        events = self.parser.events
        # Every request parsed before an error is answered, in order; the error only if
        # the connection is still open after them.
        while events:
            event = events.pop(0)
            if type(event) is RequestHead:
                if not self._serve(event):
                    return CLOSE
            elif type(event) is ProtocolError:
                return self._refuse(event)
            # else: leftovers of a body a previous response drained
        if self.parser.finished:
            return CLOSE
        return PARK

    def _refuse(self, exc: ProtocolError) -> Next:
        log.info("bad request from %s: %s", self.channel.peer[0], exc)
        try:
            self.channel.send(error_response(exc.status))
        except OSError:
            pass
        return CLOSE

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
        ctx.run(environ, response)
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
            deadline = self.deadline = self.conn.ctx.body_deadline()
        closed = "client closed the connection before the body ended"
        data = recv_body_wait(self.conn.channel, deadline, self.response, closed)
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
