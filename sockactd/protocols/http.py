"""HTTP/1.1 request parsing: bytes in, request records out (sans-IO, over httptools).

Theory of operation: `RequestParser.feed(data)` hands bytes to llhttp (through
httptools) and appends what it recognised to `events`, in order: a `RequestHead`
when a request's head is complete, `bytes` for each piece of its body, then
`END` when the request is complete. Pipelined requests simply follow each other
in `events`; after a request that closes the connection, further bytes are
ignored. The caller pops events as it needs them and feeds more bytes when
`events` is empty; the parser never reads a socket, never blocks, never looks
at a clock.

Rule 1: malformed input appends a `ProtocolError` event carrying the status to
        answer with (400, 413, 414, 431, 501, 505), after the events of every request
        before it; then the parser is dead (`finished`) and the connection must
        close once those requests are answered.
Rule 2: the result never depends on how the reads cut the bytes. The parser
        finds each head's end itself and gives httptools one head, then one
        Content-Length body, at a time; chunked bodies are decoded by chunked.py.
Rule 3: RFC 9110/9112's musts that httptools leaves to us are checked here (no
        obsolete line folding, no bare LF, head size: 414/431), in head.py (one
        valid Host in HTTP/1.1, field names, only the `chunked` transfer coding,
        HTTP/1.x only, 501 for unknown methods) and fields.py (request-target).
        httptools itself refuses Content-Length with Transfer-Encoding and
        differing Content-Lengths.

This module knows nothing of WSGI (see wsgi.py) nor of sockets (worker/).
"""

from __future__ import annotations

import httptools

from sockactd.errors import ProtocolError
from sockactd.protocols.chunked import ChunkedDecoder
from sockactd.protocols.head import (
    LENIENT,
    METHOD_LIMIT,
    RequestHead,
    check_head,
    method_refused,
    not_implemented,
)

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from typing import Final

__all__ = ["END", "RequestHead", "RequestParser"]


class _End:
    """Marker event: the current request's body is complete."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END: Final = _End()


# Framing states of a connection's byte stream (ints: checked for every read).
_HEAD = 0  # between requests, or in a head: bytes go to httptools up to the head's end
_LENGTH = 1  # in a Content-Length body: exactly that many bytes go to httptools
_CHUNKED = 2  # in a chunked body: bytes go to ChunkedDecoder
_DONE = 3  # after an error, an upgrade or a request that closes the connection
_METHOD = 4  # httptools refused the method: wait for all of it to answer 501 or 400
_HEAD_END: Final = b"\r\n\r\n"


class RequestParser:
    """Feed bytes, pop events from `events`. One instance per connection.

    The parser itself finds where each head ends and how long each body is, and hands
    httptools one head (then one Content-Length body) at a time: checks on head bytes
    then never see body bytes, whatever the reads' boundaries (see `_feed_head`).
    """

    def __init__(self, head_limit: int, body_limit: int = 0) -> None:
        self.events: list[RequestHead | bytes | _End | ProtocolError] = []
        self.upgraded = False  # the parser stopped after an Upgrade/CONNECT request
        self._head_limit = head_limit
        self._body_limit = body_limit
        self._parser = httptools.HttpRequestParser(self)
        self._state = _HEAD
        self._tail = b""  # the last bytes of the head so far: its end may straddle reads
        self._head_fed = 0
        self._line_ended = False  # an LF seen in the head so far (see _feed_head)
        self._start = b""  # the first bytes of a head that came in pieces (see _feed_head)
        self._left = 0  # Content-Length body bytes not fed yet
        self._chunks: ChunkedDecoder | None = None
        self._keep_alive = True  # the current request's
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body_seen = 0

    @property
    def in_request(self) -> bool:
        """True once any byte of a request arrived that has not been fully parsed."""
        state = self._state
        return state in (_LENGTH, _CHUNKED, _METHOD) or (state == _HEAD and self._head_fed > 0)

    @property
    def finished(self) -> bool:
        """True when this connection carries no further request (see `feed`)."""
        return self._state == _DONE

    def feed(self, data: bytes) -> None:
        """Parse `data`. Bad input appends a ProtocolError (with the status to send) after
        the events of the requests before it, and parsing stops: the connection must close.
        After a request that does not keep the connection, what follows is ignored."""
        pos = 0
        end = len(data)
        try:
            while pos < end:
                state = self._state
                if state == _HEAD:
                    pos = self._feed_head(data, pos)
                elif state == _LENGTH:
                    pos = self._feed_length(data, pos)
                elif state == _CHUNKED:
                    pos = self._feed_chunked(data, pos)
                elif state == _METHOD:
                    pos = self._feed_method(data, pos)
                else:
                    return
        except ProtocolError as exc:
            self._state = _DONE
            self.events.append(exc)

    def _feed_head(self, data: bytes, pos: int) -> int:
        """Feed head bytes up to and including the head's final CRLF; return where they end."""
        tail = self._tail
        stop = -1
        if tail:
            found = (tail + data[pos : pos + 3]).find(_HEAD_END)
            if found >= 0:
                stop = pos + found + 4 - len(tail)
        if stop < 0:
            found = data.find(_HEAD_END, pos)
            stop = found + 4 if found >= 0 else len(data)
        piece = data[pos:stop]
        fed = self._head_fed
        self._head_fed = fed + len(piece)
        if self._head_fed > self._head_limit:
            # RFC 9112 3: a request-target longer than we parse MUST get 414. The request
            # line is taken to end at the head's first LF (an empty line before it too).
            if not self._line_ended and b"\n" not in piece[: self._head_limit - fed]:
                raise ProtocolError("request target too long", 414)
            raise ProtocolError("request head too large", 431)
        if LENIENT:
            _check_lines(piece, tail[-1:])
        try:
            self._feed_parser(piece)
        except ProtocolError:
            if self._head_fed:  # the error is in this head, not in a callback's check
                self._start += piece[: METHOD_LIMIT - len(self._start)]
                verdict = method_refused(self._start)
                if verdict is None:
                    self._state = _METHOD  # a token so far: wait for the rest of it
                    return stop
                if verdict:
                    raise not_implemented(self._start) from None
            raise
        if self._head_fed:  # a head still coming in (rare): what the checks above need
            self._tail = (tail + piece)[-3:]
            if not self._line_ended:
                self._line_ended = b"\n" in piece
            if len(self._start) < METHOD_LIMIT:
                self._start += piece[: METHOD_LIMIT - len(self._start)]
        return stop

    def _feed_method(self, data: bytes, pos: int) -> int:
        """After httptools refused the start of a head: read until its method is whole."""
        take = data[pos : pos + METHOD_LIMIT - len(self._start)]
        self._start += take
        verdict = method_refused(self._start)
        if verdict is None:
            return pos + len(take)
        if verdict:
            raise not_implemented(self._start)
        raise ProtocolError(f"bad request line {self._start[:40]!r}")

    def _feed_length(self, data: bytes, pos: int) -> int:
        piece = data[pos : pos + self._left]
        self._left -= len(piece)
        self._feed_parser(piece)  # on_body, then on_message_complete at the end
        return pos + len(piece)

    def _feed_chunked(self, data: bytes, pos: int) -> int:
        chunks = self._chunks
        assert chunks is not None
        pos = chunks.feed(data, pos)
        if chunks.done:
            self._chunks = None
            # httptools waits for a body it was never given: the next head needs a new one
            self._parser = httptools.HttpRequestParser(self)
            self.on_message_complete()
        return pos

    def _feed_parser(self, piece: bytes) -> None:
        try:
            self._parser.feed_data(piece)
        except httptools.HttpParserUpgrade:
            self.upgraded = True
            self._state = _DONE
        except httptools.HttpParserError as exc:  # callback errors too
            raise _protocol_error(exc) from None

    # --- httptools callbacks -------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body_seen = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # RFC 9110 5.5: a field value excludes leading and trailing whitespace
        self._headers.append((name, value.strip(b" \t")))

    def on_headers_complete(self) -> None:
        parser = self._parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise ProtocolError(f"unsupported HTTP version {version}", 505)
        head = check_head(
            parser.get_method().decode("ascii"),
            self._url,
            version,
            self._headers,
            parser.should_keep_alive(),
            parser.should_upgrade(),
        )
        if self._body_limit and (head.content_length or 0) > self._body_limit:
            raise ProtocolError("request body too large", 413)
        self._head_fed = 0
        self._line_ended = False
        self._start = b""
        self._tail = b""
        self._keep_alive = head.keep_alive
        if head.chunked:
            self._state = _CHUNKED
            self._chunks = ChunkedDecoder(self.on_body, self._head_limit)
        elif head.content_length:
            self._state = _LENGTH
            self._left = head.content_length
        self.events.append(head)

    def on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        if self._body_limit and self._body_seen > self._body_limit:
            raise ProtocolError("request body too large", 413)
        self.events.append(body)

    def on_message_complete(self) -> None:
        # RFC 9112 9.6: after a request that closes the connection, nothing more is read
        self._state = _HEAD if self._keep_alive else _DONE
        self.events.append(END)


def _protocol_error(exc: httptools.HttpParserError) -> ProtocolError:
    """The ProtocolError a callback raised, or one for httptools' own refusal."""
    if isinstance(exc, httptools.HttpParserCallbackError):
        cause = exc.__context__
        if isinstance(cause, ProtocolError):
            return cause
    return ProtocolError(f"bad request: {exc}")


def _check_lines(piece: bytes, previous: bytes) -> None:
    """What llhttp refuses and httptools 0.1.1 does not (see head.LENIENT), for head bytes.

    `previous` is the byte of the same head before `piece`, if any.
    """
    # RFC 9112 5.2: obsolete line folding is refused (0.1.1 would unfold it)
    if b"\n " in piece or b"\n\t" in piece or (previous == b"\n" and piece[:1] in (b" ", b"\t")):
        raise ProtocolError("obsolete line folding in a request header")
    # RFC 9112 2.2 lets a recipient take a bare LF as a line end; llhttp refuses it and
    # 0.1.1 accepts it: refused, so both builds and the head's end search agree.
    crlf = piece.count(b"\r\n") + (previous == b"\r" and piece[:1] == b"\n")
    if piece.count(b"\n") != crlf:
        raise ProtocolError("bare LF in a request head")
