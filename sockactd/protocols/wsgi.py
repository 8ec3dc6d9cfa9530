"""PEP 3333 pieces that do not touch a socket: environ, wsgi.input, start_response, heads.

Theory of operation: the worker builds one `environ` per request with
`http_environ` (or protocols/uwsgi.py's vars plus `wsgi_keys`), hands the app an
`InputStream` that pulls body bytes through a callable the worker supplies, and a
`StartResponse` that validates what the app says. `render_head` turns the
validated status and headers plus the framing the worker chose into bytes.

Rule 1: strings in the environ and in response heads are "native strings"
        holding latin-1 (PEP 3333); PATH_INFO is percent-decoded, then latin-1.
Rule 2: the app may not set hop-by-hop headers, CR/LF or other control bytes;
        violations raise `ResponseError` from start_response, i.e. in the app,
        which the worker turns into a 500.
Rule 3: a body the client cut short is never reported as complete: the pull
        callable raises an OSError subclass and `InputStream` lets it through.

No sockets, no clocks, no logging here (see worker/).

Why ~460 lines: this is PEP 3333's whole server-side surface (environ, wsgi.input,
wsgi.file_wrapper, start_response, the response head) and the rules above hold
across all of it; each `# ---` section is under 100 lines.
"""

from __future__ import annotations

import os
import stat as stat_mod
import sys

from sockactd.symbol import Symbol

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType
    from typing import IO, ClassVar, Final, TypeAlias

    ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]
    Headers: TypeAlias = list[tuple[str, str]]
    Write: TypeAlias = Callable[[bytes], None]

__all__ = [
    "EMPTY_INPUT",
    "BodyTooLarge",
    "ClientDisconnected",
    "FileWrapper",
    "Framing",
    "InputStream",
    "ResponseError",
    "StartResponse",
    "http_environ",
    "iterable_length",
    "no_body_status",
    "render_head",
    "split_target",
    "wsgi_keys",
]

HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Character sets instead of regular expressions: `re` is not needed at start-up, and
# str.strip / isprintable / frozenset.isdisjoint are as fast on short header strings.
# RFC 9110 5.6.2 tchar, as str (header names are str here): protocols/fields.py's TOKEN,
# spelt again so that a uwsgi-only worker does not import fields.py at start-up;
# tests/unit/protocols/test_wsgi.py fails when the two differ.
_TOKEN_CHARS: Final = (
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_BAD_STATUS_CHARS: Final = frozenset(map(chr, [*range(0x20), 0x7F]))
_BAD_VALUE_CHARS: Final = _BAD_STATUS_CHARS - {"\t"}  # a header value may hold HTAB


class ResponseError(RuntimeError):
    """The app broke a PEP 3333 response rule (bad status or header, double start)."""


class ClientDisconnected(ConnectionError):
    """The client closed the connection before sending the whole request body."""


class BodyTooLarge(OSError):
    """The request body exceeds limit-post; the worker answers 413 if it still can."""


class Framing(Symbol):
    """How the response body is delimited on the wire."""

    LENGTH: ClassVar[Framing]  # Content-Length (the app's, or one we computed)
    CHUNKED: ClassVar[Framing]  # HTTP/1.1, length unknown
    UNTIL_CLOSE: ClassVar[Framing]  # HTTP/1.0 or uwsgi, length unknown: the body ends at close
    NONE: ClassVar[Framing]  # HEAD, 1xx, 204, 304: no body whatever the headers say


Framing.LENGTH = Framing("LENGTH", "length")
Framing.CHUNKED = Framing("CHUNKED", "chunked")
Framing.UNTIL_CLOSE = Framing("UNTIL_CLOSE", "close")
Framing.NONE = Framing("NONE", "none")


# --- environ ---------------------------------------------------------------------

_HEADER_KEYS: dict[bytes, str | None] = {}
_HEADER_KEYS_MAX: Final = 512


def _environ_key(name: bytes) -> str | None:
    """HTTP_* key for a header name; None for names with '_' (spoofing HTTP_X_... by a dash)."""
    try:
        return _HEADER_KEYS[name]
    except KeyError:
        pass
    text = name.decode("latin-1").upper()
    key: str | None
    if "_" in text:
        key = None
    elif text in ("CONTENT-TYPE", "CONTENT-LENGTH"):
        key = text.replace("-", "_")
    else:
        key = "HTTP_" + text.replace("-", "_")
    if len(_HEADER_KEYS) < _HEADER_KEYS_MAX:
        _HEADER_KEYS[name] = key
    return key


def wsgi_keys(url_scheme: str, multithread: bool, multiprocess: bool) -> dict[str, object]:
    """The wsgi.* keys and constants shared by every request of a listener."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url_scheme,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        "SCRIPT_NAME": "",
    }


def split_target(target: bytes) -> tuple[str, str, str]:
    """(PATH_INFO, QUERY_STRING, REQUEST_URI) from an origin-form target, per PEP 3333.

    protocols/http.py turns every other form into origin-form and refuses fragments.
    """
    raw = target.decode("latin-1")
    path, _, query = raw.partition("?")
    if "%" in path:
        from urllib.parse import unquote_to_bytes  # rare: most paths have no escapes

        # back to the raw bytes first: unquote_to_bytes would encode a str as UTF-8
        path = unquote_to_bytes(path.encode("latin-1")).decode("latin-1")
    return path, query, raw


def http_environ(
    base: dict[str, object],
    method: str,
    target: bytes,
    version: str,
    headers: list[tuple[bytes, bytes]],
    peer: tuple[str, str],
) -> dict[str, object]:
    """A full environ for one HTTP request. `base` holds wsgi_keys and SERVER_NAME/PORT."""
    environ = base.copy()
    path, query, uri = split_target(target)
    environ["REQUEST_METHOD"] = method
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = query
    environ["REQUEST_URI"] = uri
    environ["SERVER_PROTOCOL"] = "HTTP/" + version
    environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = peer
    for name, value in headers:
        key = _environ_key(name)
        if key is None:
            continue
        text = value.decode("latin-1")
        if key in environ:
            text = f"{environ[key]}{'; ' if key == 'HTTP_COOKIE' else ', '}{text}"
        environ[key] = text
    return environ


# --- wsgi.input --------------------------------------------------------------------


class InputStream:
    """wsgi.input: a read-only byte stream over `pull`, which returns b"" at the end.

    `pull` may raise ClientDisconnected, BodyTooLarge or TimeoutError (all OSError);
    they propagate to the app unchanged, so a cut-short body never looks complete.
    """

    __slots__ = ("_buffer", "_eof", "_pull")

    def __init__(self, pull: Callable[[], bytes]) -> None:
        self._pull = pull
        self._buffer = bytearray()
        self._eof = False

    def _fill(self) -> bool:
        """Pull one more piece into the buffer; False at the end of the body."""
        if self._eof:
            return False
        data = self._pull()
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                return self._take(end + 1 if limit < 0 else min(end + 1, limit))
            if 0 <= limit <= len(self._buffer):
                return self._take(limit)
            start = len(self._buffer)
            if not self._fill():
                return self._take(len(self._buffer))

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def drain(self, limit: int) -> bool:
        """Discard the rest of the body, up to `limit` bytes; True if it all arrived."""
        seen = len(self._buffer)
        self._buffer.clear()
        while seen <= limit and self._fill():
            seen += len(self._buffer)
            self._buffer.clear()
        return self._eof


# --- wsgi.file_wrapper ---------------------------------------------------------------


class FileWrapper:
    """wsgi.file_wrapper: the worker sends regular files with os.sendfile, else iterates."""

    def __init__(self, filelike: IO[bytes], blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        close = getattr(filelike, "close", None)
        if close is not None:
            self.close = close

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while True:
            data = read(self.blksize)
            if not data:
                return
            yield data

    def sendfile_span(self) -> tuple[int, int, int] | None:
        """(fd, offset, count) when the file can go through os.sendfile, else None."""
        try:
            fd = self.filelike.fileno()
            info = os.fstat(fd)
            offset = self.filelike.tell()
        except (AttributeError, OSError, ValueError):
            return None
        if not stat_mod.S_ISREG(info.st_mode):
            return None
        return fd, offset, max(info.st_size - offset, 0)


def _no_body() -> bytes:
    return b""


# wsgi.input of every request without a body. One object for all: at its end from the
# start, it never changes (nothing is buffered, `_pull` is never called), so sharing it
# is safe, and it saves making a stream and its buffer for nearly every GET.
EMPTY_INPUT: Final = InputStream(_no_body)
EMPTY_INPUT._eof = True


# --- start_response ----------------------------------------------------------------------


class StartResponse:
    """The start_response callable of one request; the worker reads what it recorded.

    `write` is PEP 3333's write(): the worker's Response subclasses this and sends.
    One object, not two, because one is made for every request.
    """

    __slots__ = ("content_length", "headers", "headers_sent", "status")

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: Headers = []
        self.content_length: int | None = None
        self.headers_sent = False  # set by the worker once the head is on the wire

    def write(self, data: bytes) -> None:
        raise NotImplementedError("the worker's Response sends the body")

    def __call__(self, status: str, headers: Headers, exc_info: ExcInfo | None = None) -> Write:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle (PEP 3333)
        elif self.status is not None:
            raise ResponseError("start_response called twice without exc_info")
        self.content_length = _check_headers(headers)
        if type(status) is not str or status not in _CHECKED_STATUS:
            _check_status(status)
            if len(_CHECKED_STATUS) >= _CHECKED_MAX:
                _CHECKED_STATUS.clear()
            _CHECKED_STATUS.add(status)
        self.status = status
        self.headers = headers
        return self.write


# Status lines already found valid: apps send a handful of constant ones, and a set
# lookup is cheaper than the checks (emptied when full, as _CHECKED below).
_CHECKED_STATUS: set[str] = set()


def _check_status(status: object) -> None:
    if type(status) is not str:
        raise ResponseError(f"status must be str, got {type(status).__name__}")
    if len(status) < 4 or not status[:3].isdigit() or status[3] != " ":
        raise ResponseError(f"status {status!r} is not '<3 digits> <reason>'")
    if not status.isprintable() and not _BAD_STATUS_CHARS.isdisjoint(status):
        raise ResponseError(f"status {status!r} contains control characters")


# Header pairs already found valid -> their Content-Length (None for other headers). Apps
# send mostly the same pairs on every response, and a dict lookup is cheaper than the
# checks; emptied when full, so pairs with changing values cannot crowd out the others.
_CHECKED: dict[tuple[str, str], int | None] = {}
_CHECKED_MAX: Final = 512
_UNCHECKED: Final = -1


def _check_headers(headers: object) -> int | None:
    """Validate the app's headers; return its Content-Length if it gave one."""
    if type(headers) is not list:
        raise ResponseError(f"headers must be a list, got {type(headers).__name__}")
    length: int | None = None
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise ResponseError(f"header {item!r} is not a (name, value) tuple")
        name, value = item
        if type(name) is not str or type(value) is not str:
            raise ResponseError(f"header {item!r}: name and value must be str")
        known = _CHECKED.get(item, _UNCHECKED)
        if known == _UNCHECKED:
            known = _check_header(name, value)
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()
            _CHECKED[item] = known
        if known is not None:
            length = known
    return length


def _check_header(name: str, value: str) -> int | None:
    """Raise for a forbidden header; its value as a number if it is Content-Length."""
    # isprintable() is the fast common answer (control characters never are); latin-1
    # text beyond ASCII is not printable either, so look closer before refusing it.
    if (
        not name
        or name.strip(_TOKEN_CHARS)
        or (not value.isprintable() and not _BAD_VALUE_CHARS.isdisjoint(value))
    ):
        raise ResponseError(f"header {(name, value)!r} has forbidden characters")
    lname = name.lower()
    if lname in HOP_BY_HOP:
        raise ResponseError(f"hop-by-hop header {name!r} is the server's to set")
    if lname == "content-length":
        if not value.isdigit():
            raise ResponseError(f"Content-Length {value!r} is not a number")
        return int(value)
    return None


# --- response head ------------------------------------------------------------------------


def render_head(
    status: str,
    headers: Headers,
    framing: Framing,
    length: int | None,
    connection: str | None,
    date: str | None,
) -> bytes:
    """The response head. Adds Date (unless None), Content-Length (when `length` is ours),
    chunking, and `Connection: <connection>` when given. Encodes latin-1 (validated by
    StartResponse)."""
    parts = [f"HTTP/1.1 {status}\r\nDate: {date}\r\n" if date else f"HTTP/1.1 {status}\r\n"]
    for name, value in headers:
        parts.append(f"{name}: {value}\r\n")
    if framing is Framing.CHUNKED:
        parts.append("Transfer-Encoding: chunked\r\n")
    elif length is not None:
        parts.append(f"Content-Length: {length}\r\n")
    if connection is not None:
        parts.append(f"Connection: {connection}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("latin-1")


def iterable_length(result: Iterable[bytes]) -> int | None:
    """Body length when the app returned a list or tuple of bytes, else None."""
    if type(result) is list or type(result) is tuple:
        total = 0
        for item in result:
            if type(item) is not bytes:
                return None
            total += len(item)
        return total
    return None


def no_body_status(status: str) -> bool:
    """1xx, 204 and 304 responses never carry a body (RFC 9110 6.4.1)."""
    return status[0] == "1" or status.startswith(("204", "304"))
