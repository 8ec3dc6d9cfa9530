"""One WSGI call: run the app, frame its response on the wire, survive whatever it does.

Shared by the connection handlers of every protocol (handlers.py). `Response`
chooses the framing when the head goes out (PEP 3333: not before the first
non-empty body piece), `run_app` calls the app, writes, calls `close()` on the
result, and turns failures into 500 / 4xx / a closed connection.

Rule 1: an app exception never leaves this module; it is logged with its
        traceback and answered with 500 if the head is not sent yet, otherwise
        the connection is closed (the client sees a truncated response).
Rule 2: a client that goes away or stalls is not an app error: it is logged at
        debug level and the connection is closed.

Why ~350 lines: `Response` is most of it, one class on purpose: it is also the
app's start_response, so the request path makes one object per request, not two
plus a bound method, and framing, keep-alive and sendfile decide on one state.
"""

from __future__ import annotations

import time

from sockactd.log import ACCESS_LOGGER, get_logger
from sockactd.protocols.wsgi import (
    FileWrapper,
    Framing,
    ResponseError,
    StartResponse,
    iterable_length,
    no_body_status,
    render_head,
)

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, Final, Protocol

    from sockactd.worker.board import Board
    from sockactd.worker.channel import Channel

    WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

    class Stopping(Protocol):
        """Whoever knows the worker is stopping: responses started before still say close."""

        closing: bool


__all__ = ["Response", "error_response", "http_date", "run_app"]

log = get_logger(__name__)
access_log = get_logger(ACCESS_LOGGER)

# Framing members as module constants: Framing.X is a class attribute lookup (~50 ns in
# 3.11), and the request path looks at the framing several times per response.
_LENGTH: Final = Framing.LENGTH
_CHUNKED: Final = Framing.CHUNKED
_UNTIL_CLOSE: Final = Framing.UNTIL_CLOSE
_NONE: Final = Framing.NONE

_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                  "Nov", "Dec")  # fmt: skip
_date_cache: list[Any] = [0, ""]
_REASONS: Final = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


def http_date() -> str:
    """IMF-fixdate of now, recomputed at most once a second (locale-independent)."""
    now = int(time.time())
    if _date_cache[0] != now:
        t = time.gmtime(now)
        _date_cache[1] = (
            f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
        )
        _date_cache[0] = now
    return str(_date_cache[1])


def error_response(status: int, keep_alive: bool = False) -> bytes:
    """A complete small plain-text response the server itself produces."""
    reason = _REASONS.get(status, "Error")
    body = f"{status} {reason}\n".encode()
    head = render_head(
        f"{status} {reason}",
        [("Content-Type", "text/plain; charset=utf-8")],
        _LENGTH,
        len(body),
        None if keep_alive else "close",
        http_date(),
    )
    return head + body


class Response(StartResponse):
    """Writes one response. `keep_alive` may turn False while it is written.

    It is also the app's start_response (the StartResponse it extends records status and
    headers): one object per request instead of two plus a bound method.
    """

    __slots__ = (
        "body_pending",
        "channel",
        "chunked_ok",
        "close_follows",
        "code",
        "framing",
        "head_only",
        "http10",
        "input_status",
        "keep_alive",
        "owner",
        "peer_gone",
        "remaining",
        "sent",
        "uwsgi",
    )

    def __init__(
        self,
        channel: Channel,
        *,
        head_only: bool,
        chunked_ok: bool,
        keep_alive: bool,
        http10: bool = False,
        uwsgi: bool = False,
        owner: Stopping | None = None,
    ) -> None:
        StartResponse.__init__(self)
        self.channel = channel
        self.owner = owner
        self.head_only = head_only
        self.chunked_ok = chunked_ok
        self.keep_alive = keep_alive
        self.http10 = http10
        self.uwsgi = uwsgi
        self.framing = _NONE
        self.remaining = -1  # body bytes still allowed by Content-Length; -1: no limit
        self.sent = 0  # body bytes written
        self.code = 0  # numeric status once the head went out, for the access log
        self.peer_gone = False
        self.input_status = 0  # 4xx when reading the request body failed
        # Set by the handler: True when unread request body makes keep-alive unsafe.
        self.body_pending: Callable[[], bool] | None = None
        # Set by the handler: a connection that ends with this response is closed at
        # once after run_app returns (nothing slow, such as an access log line, between).
        self.close_follows = False

    def write(self, data: bytes) -> None:
        """The app's write() callable, also used for each piece of the result."""
        if type(data) is not bytes:
            raise ResponseError(f"response body must be bytes, got {type(data).__name__}")
        if not self.headers_sent:
            self._send_head(None, data)
        elif data:
            self._send_body(data)

    def send_result(self, result: Iterable[bytes]) -> None:
        length = iterable_length(result)
        if length is not None and not self.headers_sent:
            # a list or tuple of bytes (iterable_length said so): no isinstance check here
            items: list[bytes] = result  # type: ignore[assignment]
            body = items[0] if len(items) == 1 else b"".join(items)
            self._send_head(length, body, last=True)
        elif type(result) is FileWrapper and self._sendfile(result):
            pass
        else:
            write = self.write
            for data in result:
                if data:
                    write(data)
        self.finish()

    def finish(self) -> None:
        if not self.headers_sent:
            self._send_head(0, b"")
        elif self.framing is _CHUNKED:
            self._wire(b"0\r\n\r\n")
        if self.remaining > 0:
            self.keep_alive = False  # fewer bytes than the app's Content-Length promised

    def _send_head(self, length: int | None, first: bytes, last: bool = False) -> None:
        """Frame and send the head with `first`; `last`: nothing else of the body follows."""
        status = self.status
        if status is None:
            raise ResponseError("the app did not call start_response before returning a body")
        framing, add_length = self._framing(status, length)
        self.framing = framing
        if self.keep_alive and (
            (self.owner is not None and self.owner.closing)
            or (self.body_pending is not None and self.body_pending())
        ):
            self.keep_alive = False
        if framing is _UNTIL_CLOSE:
            self.keep_alive = False
        connection = None
        if not self.uwsgi:
            if not self.keep_alive:
                connection = "close"
            elif self.http10:
                connection = "keep-alive"
        # uwsgi: the front end is the HTTP server and dates the response itself (nginx
        # does, as it does for uWSGI, which sends no Date either)
        date = None if self.uwsgi else http_date()
        head = render_head(status, self.headers, framing, add_length, connection, date)
        self.headers_sent = True
        self.code = int(status[:3])
        body = self._frame(first) if first and framing is not _NONE else b""
        # The whole response of a list or tuple (no close() to run), and the connection
        # is closed right after (`close_follows`): on TCP these bytes then leave with
        # our FIN in one segment (two segments fewer for both ends to process).
        last = last and self.close_follows and not self.keep_alive and self.remaining <= 0
        try:
            self.channel.send_parts(head, body, last)
        except OSError:
            self._peer_lost()
            raise

    def _peer_lost(self) -> None:
        """A send failed: the client is gone, so no keep-alive and no 500 after it (run_app)."""
        self.peer_gone = True
        self.keep_alive = False

    def _framing(self, status: str, length: int | None) -> tuple[Framing, int | None]:
        """(framing, Content-Length to add ourselves or None)."""
        app_length = self.content_length
        if self.head_only or no_body_status(status):
            return _NONE, (length if app_length is None and self.head_only else None)
        if app_length is not None:
            self.remaining = app_length
            return _LENGTH, None
        if length is not None:
            self.remaining = length
            return _LENGTH, length
        return (_CHUNKED if self.chunked_ok else _UNTIL_CLOSE), None

    def _frame(self, data: bytes) -> bytes:
        framing = self.framing
        if framing is _LENGTH:
            if len(data) > self.remaining:
                log.warning("app sent more than its Content-Length; extra bytes dropped")
                data = data[: self.remaining]
                self.keep_alive = False
            self.remaining -= len(data)
        elif framing is _CHUNKED:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        elif framing is _NONE:
            return b""
        self.sent += len(data)
        return data

    def _send_body(self, data: bytes) -> None:
        data = self._frame(data)
        if data:
            self.channel.nodelay()
            self._wire(data)

    def _wire(self, data: bytes) -> None:
        try:
            self.channel.send(data)
        except OSError:
            self._peer_lost()
            raise

    def _sendfile(self, wrapper: FileWrapper) -> bool:
        span = wrapper.sendfile_span()
        if span is None or self.headers_sent or self.status is None:
            return False
        fd, offset, count = span
        if self.content_length is not None:
            count = min(count, self.content_length)
        self._send_head(count, b"")
        if self.framing is not _LENGTH:
            return True
        self.channel.nodelay()
        try:
            sent = self.channel.sendfile(fd, offset, count)
        except OSError:
            self._peer_lost()
            raise
        self.remaining -= sent
        self.sent += sent
        return True


def run_app(app: WSGIApp, environ: dict[str, Any], response: Response, board: Board) -> None:
    """Call the app and write its response; never raises (see the module rules)."""
    if board.describing:  # harakiri names the request it kills
        uri = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
        board.describe(f"{environ.get('REQUEST_METHOD', '?')} {uri} "
                       f"from {environ.get('REMOTE_ADDR') or '?'}")  # fmt: skip
    board.request_started()
    try:
        result = app(environ, response)
        try:
            response.send_result(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    except Exception as exc:
        _fail(response, environ, exc)
    finally:
        board.request_finished(response)


def _fail(response: Response, environ: dict[str, Any], exc: Exception) -> None:
    response.keep_alive = False
    if response.peer_gone:
        log.debug("client %s went away: %s", environ.get("REMOTE_ADDR"), exc)
        return
    status = response.input_status
    if status:
        log.info("request body from %s failed: %s", environ.get("REMOTE_ADDR"), exc)
    else:
        status = 500
        log.error(
            "error in the app on %s %s",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            exc_info=exc,
        )
    if response.headers_sent:
        return
    response.code = status
    try:
        response.channel.send(error_response(status))
    except OSError:
        pass


def log_access(environ: dict[str, Any], response: Response, started: float) -> None:
    access_log.info(
        '%s - "%s %s %s" %d %d %.1fms',
        environ.get("REMOTE_ADDR", "-"),
        environ.get("REQUEST_METHOD"),
        environ.get("REQUEST_URI") or environ.get("PATH_INFO"),
        environ.get("SERVER_PROTOCOL"),
        response.code,
        response.sent,
        (time.monotonic() - started) * 1000.0,
    )
