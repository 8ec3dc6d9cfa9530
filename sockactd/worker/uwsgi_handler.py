"""uwsgi connections from a front end such as nginx (uwsgi_pass): one request, then close.

`UwsgiHandler.on_bytes` parses the packet head with protocols/uwsgi.py (usually all
in the first read: nginx writes the whole packet at once), serves the request, and
closes. The body is exactly CONTENT_LENGTH bytes, read as the app reads wsgi.input.
HTTP sent to a uwsgi socket by mistake is answered with a 400 that says which socket
speaks HTTP. This module does not accept, select, or frame responses: serve.py and
exchange.py do.
"""

from __future__ import annotations

from sockactd.errors import ProtocolError
from sockactd.log import get_logger
from sockactd.protocols.uwsgi import UwsgiRequestParser, environ_from_vars, parse_packet
from sockactd.protocols.wsgi import EMPTY_INPUT, InputStream
from sockactd.worker.connection import CLOSE, PARK, ConnectionHandler, recv_body_wait
from sockactd.worker.exchange import Response, error_response

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from typing import Any

    from sockactd.protocols.uwsgi import UwsgiHead
    from sockactd.worker.channel import BodyDeadline, Channel
    from sockactd.worker.connection import Context, Next

__all__ = ["UwsgiHandler"]

log = get_logger(__name__)


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


class UwsgiHandler(ConnectionHandler):
    """A uwsgi connection: one request, then close.

    The listener's environ has no SERVER_NAME/SERVER_PORT: the front end sends them
    among the request's vars (the inherited `base_environ` adds nothing).
    `between_requests` stays False: a parked uwsgi connection still owes its request.
    """

    __slots__ = ("parser", "remainder")

    def __init__(self, ctx: Context, channel: Channel, base: dict[str, Any]) -> None:
        ConnectionHandler.__init__(self, ctx, channel, base)
        # Made only when the first read did not hold the whole head (see _head).
        self.parser: UwsgiRequestParser | None = None
        self.remainder = b""

    def movable(self) -> bool:
        # One request per connection: it may move only until its first read.
        return self.parser is None and not self.remainder

    def on_bytes(self, data: bytes) -> Next:
        try:
            head = self._head(data)
            if head is None:
                return PARK
            environ = environ_from_vars(head, self.base)
        except ProtocolError as exc:
            self._refuse(data, exc)
            return CLOSE
        self._serve(environ)
        return CLOSE

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
            body = _UwsgiBody(self.channel, self.remainder, length, response, ctx.body_deadline())
            environ["wsgi.input"] = InputStream(body.pull)
        else:
            environ["wsgi.input"] = EMPTY_INPUT
        ctx.run(environ, response)


class _UwsgiBody:
    """Exactly CONTENT_LENGTH bytes: what followed the vars block, then the socket."""

    __slots__ = ("channel", "deadline", "first", "left", "response")

    def __init__(
        self,
        channel: Channel,
        first: bytes,
        length: int,
        response: Response,
        deadline: BodyDeadline | None,
    ) -> None:
        self.channel = channel
        self.first = first[:length]
        self.left = length
        self.response = response
        self.deadline = deadline

    def pull(self) -> bytes:
        if self.left <= 0:
            return b""
        if self.first:
            data, self.first = self.first, b""
        else:
            closed = "front end closed the connection before the body ended"
            data = recv_body_wait(self.channel, self.deadline, self.response, closed)
            data = data[: self.left]
        self.left -= len(data)
        return data
