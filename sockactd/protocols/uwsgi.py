"""The uwsgi binary protocol, request side: bytes in, a request head out.

A uwsgi request (what nginx's `uwsgi_pass` sends) is a 4-byte header --
modifier1 (u8), datasize (u16 little-endian), modifier2 (u8) -- then `datasize`
bytes of vars: repeated (u16 LE key length, key, u16 LE value length, value).
The request body follows the vars block: CONTENT_LENGTH bytes, read as a stream.
Responses are plain HTTP/1.x status line and headers, so nothing here writes.

Rule 1: this module never touches a socket, a clock or a log. The caller feeds
        whatever it read; `feed` answers "need more" (None) or the whole head.
Rule 2: anything malformed raises errors.ProtocolError at the earliest byte that
        proves it (a bad header is refused before its vars arrive); the caller
        closes the connection and keeps serving.

Only modifier1 == 0 (a WSGI request) is served. Vars are decoded as latin-1, the
PEP 3333 "native string" rule, so every byte survives the round trip.
`environ_from_vars` turns the vars into the CGI part of a WSGI environ.
"""

from __future__ import annotations

from sockactd.errors import ProtocolError

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Final

__all__ = [
    "HEADER_SIZE",
    "UwsgiHead",
    "UwsgiRequestParser",
    "environ_from_vars",
    "parse_packet",
]

HEADER_SIZE: Final = 4
_WSGI_MODIFIER1: Final = 0
# Duplicate request headers arrive as repeated HTTP_* vars; CGI wants one value.
_COOKIE_VAR: Final = "HTTP_COOKIE"


class UwsgiHead:
    """One request's header bytes and vars."""

    __slots__ = ("modifier1", "modifier2", "vars")

    def __init__(self, modifier1: int, modifier2: int, vars: dict[str, str]) -> None:
        self.modifier1 = modifier1
        self.modifier2 = modifier2
        self.vars = vars

    def __eq__(self, other: object) -> bool:
        if type(other) is not UwsgiHead:
            return NotImplemented
        return (self.modifier1, self.modifier2, self.vars) == (
            other.modifier1,
            other.modifier2,
            other.vars,
        )

    def __repr__(self) -> str:
        return f"UwsgiHead({self.modifier1!r}, {self.modifier2!r}, {self.vars!r})"


class UwsgiRequestParser:
    """Feed bytes, get one request head. Never reads a socket, never blocks.

    One parser per request: once `feed` has returned the head, the bytes that
    followed the vars block are in `remainder` (the start of the body) and the
    parser is finished; feeding it again is a caller bug (RuntimeError).
    A caller that usually has the whole packet in its first read may call
    `parse_packet` first and make a parser only when that says "need more".
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._done = False
        self.remainder = b""

    def feed(self, data: bytes) -> UwsgiHead | None:
        """Add `data`; return the head once complete, None while more bytes are needed.

        Raises ProtocolError for a modifier1 other than 0, a datasize over the
        limit, or a vars block whose lengths do not add up.
        """
        if self._done:
            raise RuntimeError("UwsgiRequestParser already returned its head")
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)
        # else: the common case, the whole packet in the first read -- parse it in place
        parsed = parse_packet(data, self._limit)
        if parsed is None:
            if not self._buffer:
                self._buffer += data
            return None
        head, self.remainder = parsed
        self._buffer = bytearray()
        self._done = True
        return head


def parse_packet(data: bytes, limit: int) -> tuple[UwsgiHead, bytes] | None:
    """(head, the bytes after the vars block) when `data` holds a whole head, else None.

    Raises ProtocolError as `UwsgiRequestParser.feed` does, as early as `data` proves it.
    """
    size = len(data)
    if size < HEADER_SIZE:
        return None
    # the header read by hand, not with struct: this runs for every request
    modifier1 = data[0]
    datasize = data[1] | data[2] << 8
    if modifier1 != _WSGI_MODIFIER1 or datasize > limit:
        _check_header(modifier1, datasize, limit)
    end = HEADER_SIZE + datasize
    if size < end:
        return None
    head = UwsgiHead(modifier1, data[3], _parse_vars(data, end))
    return head, (data[end:] if size > end else b"")


def _check_header(modifier1: int, size: int, limit: int) -> None:
    if modifier1 != _WSGI_MODIFIER1:
        raise ProtocolError(f"uwsgi modifier1={modifier1} is not served (only 0, WSGI)", 501)
    if size > limit:
        raise ProtocolError(f"uwsgi vars block of {size} bytes exceeds limit {limit}", 431)


def _parse_vars(data: bytes, end: int) -> dict[str, str]:
    """The vars of a well-formed block data[HEADER_SIZE:end], fast; anything odd goes to
    _parse_vars_checked."""
    # latin-1 maps every byte to one character, so one decode of the packet and slicing
    # by the byte offsets gives each string: no per-string decode or struct call, and no
    # copy of the block. This loop runs for every request, so it has no calls: a length
    # cut short raises IndexError, and the careful parser then says exactly what is wrong.
    text = (data if len(data) == end else data[:end]).decode("latin-1")
    found: dict[str, str] = {}
    count = 0
    pos = HEADER_SIZE
    try:
        while pos < end:
            # u16 little-endian lengths: the low byte, plus the high byte only when it
            # is set. nginx's names and values are nearly all under 256 bytes, so this
            # skips a shift and an or per length: ~15% off a typical request (3.11).
            start = pos + 2
            stop = start + data[pos]
            if data[pos + 1]:
                stop += data[pos + 1] << 8
            value = stop + 2
            pos = value + data[stop]
            if data[stop + 1]:
                pos += data[stop + 1] << 8
            found[text[start:stop]] = text[value:pos]
            count += 1
    except IndexError:
        pass
    else:
        # checked once, not per var: the last length ended exactly at the end of the
        # block, no name was empty, no name came twice (those must be merged)
        if pos == end and count == len(found) and "" not in found:
            return found
    block = data[HEADER_SIZE:end]
    return _parse_vars_checked(block, block.decode("latin-1"))  # raises, or merges


def _parse_vars_checked(block: bytes, text: str) -> dict[str, str]:
    size = len(block)
    found: dict[str, str] = {}
    pos = 0
    while pos < size:
        key, pos = _take_string(block, text, pos, size, "key")
        value, pos = _take_string(block, text, pos, size, "value")
        if not key:
            raise ProtocolError("uwsgi var with an empty name")
        previous = found.get(key)
        found[key] = value if previous is None else _merge(key, previous, value)
    return found


def _take_string(block: bytes, text: str, pos: int, size: int, what: str) -> tuple[str, int]:
    if pos + 2 > size:
        raise ProtocolError(f"truncated uwsgi vars: {what} length cut at byte {pos}")
    start = pos + 2
    end = start + (block[pos] | block[pos + 1] << 8)  # u16, little-endian
    if end > size:
        raise ProtocolError(
            f"truncated uwsgi vars: {what} of {end - start} bytes at byte {start} "
            f"runs past the {size}-byte block"
        )
    return text[start:end], end


def _merge(key: str, previous: str, value: str) -> str:
    # nginx passes each repeated request header as its own HTTP_* var; CGI (and
    # the HTTP side of sockactd) fold them into one. Other vars: the last one wins.
    if not key.startswith("HTTP_"):
        return value
    separator = "; " if key == _COOKIE_VAR else ", "
    return previous + separator + value


def environ_from_vars(
    head: UwsgiHead, base: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The CGI part of a PEP 3333 environ, plus wsgi.url_scheme, laid over a copy of `base`.

    `base` holds what the caller would add anyway (wsgi.* keys), so the whole
    environ is built in one dict. Every var goes through as a CGI variable.
    Missing ones get PEP 3333 defaults; PATH_INFO and QUERY_STRING are derived
    from REQUEST_URI when nginx sent only that. Raises ProtocolError without
    REQUEST_METHOD or with a CONTENT_LENGTH that is not a non-negative integer
    (an empty one means "no body", as nginx sends for GET).
    """
    vars_ = head.vars
    env: dict[str, object] = dict(vars_) if base is None else {**base, **vars_}
    if not vars_.get("REQUEST_METHOD"):
        raise ProtocolError("uwsgi request without REQUEST_METHOD")
    length = vars_.get("CONTENT_LENGTH")
    # isascii: str.isdigit alone would take latin-1 superscripts such as "\xb2"
    if length and not (length.isascii() and length.isdigit()):
        raise ProtocolError(f"uwsgi CONTENT_LENGTH {length!r} is not a non-negative integer")
    # Defaults are computed only when missing: nginx's uwsgi_params send them all.
    if "SCRIPT_NAME" not in vars_:
        env["SCRIPT_NAME"] = ""
    if "PATH_INFO" not in vars_ or "QUERY_STRING" not in vars_:
        # nginx's uwsgi_params send both; derive them only from a bare REQUEST_URI
        path, query = _split_request_uri(vars_.get("REQUEST_URI", ""))
        if "PATH_INFO" not in vars_:
            env["PATH_INFO"] = _path_below_script(path, vars_.get("SCRIPT_NAME", ""))
        env.setdefault("QUERY_STRING", query)
    scheme = _url_scheme(vars_) if "HTTPS" in vars_ or "UWSGI_SCHEME" in vars_ else "http"
    if "SERVER_NAME" not in vars_:
        env["SERVER_NAME"] = _host_name(vars_.get("HTTP_HOST", "")) or "localhost"
    if "SERVER_PORT" not in vars_:
        env["SERVER_PORT"] = "443" if scheme == "https" else "80"
    if "SERVER_PROTOCOL" not in vars_:
        env["SERVER_PROTOCOL"] = "HTTP/1.1"
    env["wsgi.url_scheme"] = scheme
    return env


def _split_request_uri(uri: str) -> tuple[str, str]:
    """(percent-decoded path, raw query) of a request target; both "" when absent."""
    target, _, query = uri.partition("?")
    target = target.partition("#")[0]
    if "://" in target:  # absolute-form: keep only the path after the authority
        authority_and_path = target.split("://", 1)[1]
        target = "/" + authority_and_path.partition("/")[2]
    if "%" in target:
        from urllib.parse import unquote_to_bytes  # rare: only paths with escapes

        # back to the raw bytes first: unquote_to_bytes would encode a str as UTF-8
        target = unquote_to_bytes(target.encode("latin-1")).decode("latin-1")
    return target, query


def _path_below_script(path: str, script_name: str) -> str:
    # only at a segment boundary: SCRIPT_NAME "/app" does not own "/application"
    if script_name and (path == script_name or path.startswith(script_name + "/")):
        return path[len(script_name) :]
    return path


def _url_scheme(vars_: dict[str, str]) -> str:
    https = vars_.get("HTTPS", "").lower() in ("on", "1")
    return "https" if https or vars_.get("UWSGI_SCHEME", "").lower() == "https" else "http"


def _host_name(host: str) -> str:
    if host.startswith("["):  # [IPv6]:port
        return host.partition("]")[0] + "]" if "]" in host else host
    return host.partition(":")[0]
