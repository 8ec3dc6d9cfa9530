"""HTTP/1.1 request parsing: bytes in, request records out (sans-IO, over httptools).

Theory of operation: `RequestParser.feed(data)` hands bytes to llhttp (through
httptools) and appends what it recognised to `events`, in order: a `RequestHead`
when a request's head is complete, `bytes` for each piece of its body, then
`END` when the request is complete. Pipelined requests simply follow each other
in `events`. The caller pops events as it needs them and feeds more bytes when
`events` is empty; the parser never reads a socket, never blocks, never looks
at a clock.

Rule 1: every malformed input raises `errors.ProtocolError` carrying the status
        to answer with (400, 413, 431, 501, 505); after that the parser is dead
        and the connection must be closed.
Rule 2: RFC 9112's musts that llhttp leaves to us are checked here: exactly one
        Host in HTTP/1.1, only the `chunked` transfer coding, HTTP/1.x only.
        llhttp itself refuses Content-Length with Transfer-Encoding and
        duplicate Content-Lengths.

This module knows nothing of WSGI (see wsgi.py) nor of sockets (worker/).
"""

from __future__ import annotations

import httptools

from sockactd.errors import ProtocolError

# typing costs start-up time; annotations are strings (PEP 563), so only mypy needs it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = ["END", "RequestHead", "RequestParser"]


class _End:
    """Marker event: the current request's body is complete."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END: Final = _End()

# Fixed bytes of a request line and its final CRLF, for the head-size estimate.
_LINE_OVERHEAD: Final = 16
_HEADER_OVERHEAD: Final = 4  # ": " and CRLF


class RequestHead:
    """One request's head. `headers` keep the client's names and order, undecoded.

    A plain class, not a dataclass: importing dataclasses costs more start-up time than
    the whole request path.
    """

    __slots__ = (
        "chunked",
        "content_length",
        "expect_continue",
        "headers",
        "keep_alive",
        "method",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: bytes,
        version: str,  # "1.1" or "1.0"
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,  # what the client asked for (version default + Connection header)
        content_length: int | None,  # None for chunked bodies
        chunked: bool,
        expect_continue: bool,
        upgrade: bool,  # Upgrade / CONNECT: served once, then the connection closes
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.chunked = chunked
        self.expect_continue = expect_continue
        self.upgrade = upgrade

    def __repr__(self) -> str:
        return f"RequestHead({self.method} {self.target!r} HTTP/{self.version})"

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


class RequestParser:
    """Feed bytes, pop events from `events`. One instance per connection."""

    def __init__(self, head_limit: int, body_limit: int = 0) -> None:
        self.events: list[RequestHead | bytes | _End] = []
        self.upgraded = False  # the parser stopped after an Upgrade/CONNECT request
        self._head_limit = head_limit
        self._body_limit = body_limit
        self._parser = httptools.HttpRequestParser(self)
        self._in_head = True
        self._head_fed = 0
        self._head_size = _LINE_OVERHEAD
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body_seen = 0
        self._ended_line = False

    @property
    def in_request(self) -> bool:
        """True once any byte of a request arrived that has not been fully parsed."""
        return not self._in_head or self._head_fed > 0

    def feed(self, data: bytes) -> None:
        """Parse `data`; raise ProtocolError (with the status to send) on bad input."""
        if self.upgraded:
            return  # after an upgrade request the connection closes; ignore what follows
        in_head = self._in_head
        if in_head:
            self._head_fed += len(data)
            self._refuse_folding(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.upgraded = True
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, ProtocolError):
                raise cause from None
            raise ProtocolError(f"bad request: {exc}") from exc
        except httptools.HttpParserError as exc:
            raise ProtocolError(f"bad request: {exc}") from None
        if self._in_head and in_head and self._head_fed > self._head_limit:
            raise ProtocolError("request head too large", 431)

    def _refuse_folding(self, data: bytes) -> None:
        """RFC 9112 5.2: obsolete line folding must be rejected (some httptools accept it)."""
        end = data.find(b"\r\n\r\n")
        head = data if end < 0 else data[: end + 2]
        if (
            (self._ended_line and head[:1] in (b" ", b"\t") and self._head_fed > len(data))
            or b"\n " in head
            or b"\n\t" in head
        ):
            raise ProtocolError("obsolete line folding in a request header")
        self._ended_line = head.endswith(b"\n")

    # --- httptools callbacks -------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_size = _LINE_OVERHEAD
        self._url = b""
        self._headers = []
        self._body_seen = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head:
            self._headers.append((name, value))
            self._grow(len(name) + len(value) + _HEADER_OVERHEAD)
        # else: a chunked trailer; WSGI has no place for it, so it is dropped

    def on_headers_complete(self) -> None:
        parser = self._parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise ProtocolError(f"unsupported HTTP version {version}", 505)
        head = _check_head(
            parser.get_method().decode("ascii"),
            self._url,
            version,
            self._headers,
            parser.should_keep_alive(),
            parser.should_upgrade(),
        )
        if self._body_limit and (head.content_length or 0) > self._body_limit:
            raise ProtocolError("request body too large", 413)
        self._in_head = False
        self._head_fed = 0
        self.events.append(head)

    def on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        if self._body_limit and self._body_seen > self._body_limit:
            raise ProtocolError("request body too large", 413)
        self.events.append(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        self.events.append(END)

    def _grow(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self._head_limit:
            raise ProtocolError("request head too large", 431)


def _check_head(
    method: str,
    target: bytes,
    version: str,
    headers: list[tuple[bytes, bytes]],
    keep_alive: bool,
    upgrade: bool,
) -> RequestHead:
    """Apply the RFC 9112 rules llhttp does not, and pick out framing headers."""
    hosts = 0
    content_length: int | None = None
    chunked = False
    expect_continue = False
    for name, value in headers:
        lname = name.lower()
        if lname == b"host":
            hosts += 1
        elif lname == b"content-length":
            content_length = int(value)  # llhttp already checked digits and duplicates
        elif lname == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                raise ProtocolError(f"unsupported transfer coding {value!r}", 501)
            chunked = True
        elif lname == b"expect" and value.strip().lower() == b"100-continue":
            expect_continue = version == "1.1"
    if hosts > 1 or (hosts == 0 and version == "1.1"):
        raise ProtocolError("HTTP/1.1 request needs exactly one Host header")
    if chunked and version == "1.0":
        raise ProtocolError("chunked transfer coding in an HTTP/1.0 request")
    return RequestHead(
        method,
        target,
        version,
        headers,
        keep_alive,
        None if chunked else (content_length or 0),
        chunked,
        expect_continue,
        upgrade,
    )
