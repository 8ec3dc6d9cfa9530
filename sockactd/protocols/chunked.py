"""The chunked transfer coding of a request body (RFC 9112 7.1), decoded here, not by httptools.

Why here: llhttp refuses the bad whitespace RFC 9112 7.1.1 allows around a chunk
extension's ";" and "=" (`5 ; a=b`), which a recipient MUST parse, and Debian's
httptools 0.1.1 accepts things llhttp refuses; decoding it ourselves gives one
behaviour on both. Extensions are parsed and ignored (RFC 9112 7.1.1: a recipient
MUST ignore extensions it does not understand); trailer fields are checked and
dropped (WSGI has no place for them).

Theory of operation: `ChunkedDecoder.feed(data, pos)` consumes bytes from `pos`,
hands each piece of chunk data to `emit`, and returns where it stopped: at the
end of `data`, or just after the body's final CRLF (`done` is then True), so
the caller parses what follows as the next request. Malformed input raises
`ProtocolError`. Partial lines are kept between calls, bounded by `line_limit`.
No sockets, no clocks.
"""

from __future__ import annotations

from sockactd.errors import ProtocolError
from sockactd.protocols.fields import HEXDIG, TOKEN, is_token

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Final

__all__ = ["ChunkedDecoder"]

_BWS: Final = b" \t"
_MAX_SIZE_DIGITS: Final = 16  # a 64-bit size; longer is an attack, not a body
# States (ints: this runs per body piece)
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


def _ext_value_end(ext: bytes, pos: int) -> int:
    """End of the chunk-ext-val (token / quoted-string) at `pos`, or -1 if there is none."""
    if ext[pos : pos + 1] == b'"':
        pos += 1
        while pos < len(ext):
            byte = ext[pos]
            if byte == 0x22:  # closing DQUOTE
                return pos + 1
            if byte == 0x5C:  # quoted-pair: "\" ( HTAB / SP / VCHAR / obs-text )
                pos += 1
                if pos >= len(ext) or (ext[pos] < 0x20 and ext[pos] != 0x09) or ext[pos] == 0x7F:
                    return -1
            elif (byte < 0x20 and byte != 0x09) or byte == 0x7F:  # qdtext
                return -1
            pos += 1
        return -1
    end = pos
    while end < len(ext) and ext[end] in TOKEN:
        end += 1
    return end if end > pos else -1


def _valid_extensions(ext: bytes) -> bool:
    """RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ), from a ";"."""
    pos = 0
    while pos < len(ext):
        if ext[pos : pos + 1] != b";":
            return False
        pos += 1
        while ext[pos : pos + 1] in (b" ", b"\t"):
            pos += 1
        start = pos
        while pos < len(ext) and ext[pos] in TOKEN:
            pos += 1
        if pos == start:
            return False
        end = pos  # of the name, or of the value if there is one
        while ext[pos : pos + 1] in (b" ", b"\t"):
            pos += 1
        if ext[pos : pos + 1] == b"=":
            pos += 1
            while ext[pos : pos + 1] in (b" ", b"\t"):
                pos += 1
            end = _ext_value_end(ext, pos)
            if end < 0:
                return False
        pos = end
        while ext[pos : pos + 1] in (b" ", b"\t"):
            pos += 1
        if pos == len(ext) and pos > end:
            return False  # BWS comes only before a ";" (or "=")
    return True


def chunk_size(line: bytes) -> int:
    """The size of a chunk-size line without its CRLF; ProtocolError if malformed."""
    if line and not line.strip(HEXDIG):
        size = line
    else:
        size, semicolon, ext = line.partition(b";")
        size = size.rstrip(_BWS)  # BWS is allowed only before a ";"
        if not semicolon or not _valid_extensions(b";" + ext):
            raise ProtocolError(f"bad chunk size line {line[:40]!r}")
    if not size or size.strip(HEXDIG) or len(size.lstrip(b"0")) > _MAX_SIZE_DIGITS:
        raise ProtocolError(f"bad chunk size line {line[:40]!r}")
    return int(size, 16)


def _check_trailer(line: bytes) -> None:
    """RFC 9112 7.1.2 / RFC 9110 5: a trailer field line is `name ":" OWS value OWS`."""
    name, colon, value = line.partition(b":")
    if not colon or not is_token(name):
        raise ProtocolError(f"bad trailer field {line[:40]!r}")
    for byte in value:
        if (byte < 0x20 and byte != 0x09) or byte == 0x7F:
            raise ProtocolError(f"bad trailer field {line[:40]!r}")


class ChunkedDecoder:
    """Decode one chunked body; `emit` gets the data, `done` turns True after the last CRLF."""

    __slots__ = ("_emit", "_left", "_line", "_line_limit", "_state", "_trailer_bytes")

    def __init__(self, emit: Callable[[bytes], None], line_limit: int) -> None:
        self._emit = emit
        self._line_limit = line_limit  # longest chunk-size line, and all trailer fields
        self._state = _SIZE
        self._left = 0
        self._line = b""
        self._trailer_bytes = 0

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes, pos: int) -> int:
        """Consume `data` from `pos`; return where this body ended, or len(data)."""
        end = len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._left, end - pos)
                self._emit(data[pos : pos + take])
                self._left -= take
                pos += take
                if not self._left:
                    self._state = _DATA_END
            elif state == _DATA_END:
                need = 2 - len(self._line)
                self._line += data[pos : pos + need]
                pos += min(need, end - pos)
                if len(self._line) == 2:
                    if self._line != b"\r\n":
                        raise ProtocolError("chunk data not followed by CRLF")
                    self._line, self._state = b"", _SIZE
            elif state == _DONE:
                return pos
            else:
                line, pos = self._take_line(data, pos)
                if line is not None:
                    self._on_line(line)
        return pos

    def _take_line(self, data: bytes, pos: int) -> tuple[bytes | None, int]:
        """A whole line without its CRLF, or None with everything kept for the next call."""
        newline = data.find(b"\n", pos)
        line = self._line + (data[pos:] if newline < 0 else data[pos : newline + 1])
        if len(line) > self._line_limit:
            if self._state == _TRAILER:
                raise ProtocolError("trailer section too long", 431)
            raise ProtocolError("chunk size line too long")
        if newline < 0:
            self._line = line
            return None, len(data)
        self._line = b""
        body = line[:-2]
        if line[-2:] != b"\r\n" or b"\r" in body:
            raise ProtocolError("bare CR or LF in a chunked body's framing")
        return body, newline + 1

    def _on_line(self, line: bytes) -> None:
        if self._state == _SIZE:
            size = chunk_size(line)
            if size:
                self._left, self._state = size, _DATA
            else:
                self._state = _TRAILER
            return
        if not line:
            self._state = _DONE  # the empty line after the trailer section
            return
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > self._line_limit:
            raise ProtocolError("trailer section too long", 431)
        if line[:1] in (b" ", b"\t"):
            raise ProtocolError("obsolete line folding in a trailer field")
        _check_trailer(line)
