"""A request head, and the RFC 9110/9112 rules a complete one must pass before an app sees it.

`check_head` takes what httptools parsed of one head and returns a `RequestHead`,
or raises `ProtocolError` with the status to answer: Host (RFC 9112 3.2), the
request-target's form (via fields.py), field names, framing headers (RFC 9112 6).
`method_refused` tells, after httptools refused the start of a head, whether it
was for an unknown method (501) or for something else (400).

Used by http.py's parser; knows nothing of reads, sockets or WSGI.
"""

from __future__ import annotations

import httptools

from sockactd.errors import ProtocolError
from sockactd.protocols.fields import TOKEN, is_token, origin_target, valid_host

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from typing import Final

__all__ = ["METHOD_LIMIT", "RequestHead", "check_head", "method_refused", "not_implemented"]

METHOD_LIMIT: Final = 64  # bytes of a head kept to tell an unknown method from garbage


class _Ignore:
    """httptools callbacks for the probes below: none."""


def _accepts(head: bytes) -> bool:
    try:
        httptools.HttpRequestParser(_Ignore()).feed_data(head)
    except httptools.HttpParserError:
        return False
    return True


# llhttp (httptools 0.5+) refuses folding, bare LF, spaces in field names and control
# bytes in targets; Debian bookworm's httptools 0.1.1 (http-parser) lets them through.
# Asked once at import (a few microseconds), so our own checks of these run only where
# the library lacks them. The unit tests force them on to test them with either build.
LENIENT: bool = any(
    _accepts(head)
    for head in (
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX Y: a\r\n\r\n",
        b"GET /\t HTTP/1.1\r\nHost: a\r\n\r\n",
    )
)
_GOOD_HOSTS: set[bytes] = set()  # Host values found valid; emptied when full
_GOOD_HOSTS_MAX: Final = 64
_GOOD_NAMES: set[bytes] = set()  # field names found to be tokens (LENIENT only)
_GOOD_NAMES_MAX: Final = 256


class RequestHead:
    """One request's head. `headers` keep the client's names and order, undecoded."""

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


_KNOWN_METHODS: dict[bytes, bool] = {}


def method_refused(start: bytes) -> bool | None:
    """After httptools refused a head starting with `start`: was it for its method?

    True: the method is a token httptools does not know (RFC 9110 9.1: SHOULD 501), or a
    token longer than any method (RFC 9112 3: SHOULD 501). False: something else is
    wrong (400). None: only token bytes so far; the answer needs more of them.
    """
    line = start.lstrip(b"\r\n")
    method, space, _ = line.partition(b" ")
    if not space:
        if line.strip(TOKEN):
            return False
        return True if len(start) >= METHOD_LIMIT and line else None
    if not method or method.strip(TOKEN):
        return False
    known = _KNOWN_METHODS.get(method)
    if known is None:
        probe = httptools.HttpRequestParser(_Ignore())
        try:
            probe.feed_data(method + b" / HTTP/1.1\r\n")
            known = True
        except httptools.HttpParserError:
            known = False
        if len(_KNOWN_METHODS) < 64:
            _KNOWN_METHODS[method] = known
    return not known


def not_implemented(start: bytes) -> ProtocolError:
    method = start.lstrip(b"\r\n").partition(b" ")[0]
    return ProtocolError(f"method {method[:40]!r} not implemented", 501)


def check_head(
    method: str,
    target: bytes,
    version: str,
    headers: list[tuple[bytes, bytes]],
    keep_alive: bool,
    upgrade: bool,
) -> RequestHead:
    """Apply the RFC 9110/9112 rules httptools does not, and pick out framing headers."""
    hosts = 0
    content_length: int | None = None
    chunked = False
    expect_continue = False
    for name, value in headers:
        lname = name.lower()
        if lname == b"host":
            hosts += 1
            if value not in _GOOD_HOSTS:  # most requests repeat a few Host values
                if not valid_host(value):  # RFC 9112 3.2: MUST answer 400
                    raise ProtocolError(f"invalid Host {value[:60]!r}")
                if len(_GOOD_HOSTS) >= _GOOD_HOSTS_MAX:
                    _GOOD_HOSTS.clear()
                _GOOD_HOSTS.add(value)
        elif lname == b"content-length":
            content_length = int(value)  # httptools already checked digits and duplicates
        elif lname == b"transfer-encoding":
            if value.lower() != b"chunked":
                raise ProtocolError(f"unsupported transfer coding {value!r}", 501)
            if chunked:  # RFC 9112 6.1: chunked is applied once
                raise ProtocolError("chunked transfer coding applied twice")
            chunked = True
        elif lname == b"expect" and value.lower() == b"100-continue":
            expect_continue = version == "1.1"
        elif LENIENT and name not in _GOOD_NAMES:  # RFC 9110 5.1
            if not is_token(name):
                raise ProtocolError(f"invalid field name {name[:60]!r}")
            if len(_GOOD_NAMES) >= _GOOD_NAMES_MAX:
                _GOOD_NAMES.clear()
            _GOOD_NAMES.add(name)
    if hosts > 1 or (hosts == 0 and version == "1.1"):  # RFC 9112 3.2: MUST answer 400
        raise ProtocolError("HTTP/1.1 request needs exactly one Host header")
    if chunked and version == "1.0":
        raise ProtocolError("chunked transfer coding in an HTTP/1.0 request")
    if (
        target[:1] == b"/"
        and not LENIENT  # llhttp refused control bytes, SP and DEL: the rest is asked here
        and target.isascii()
        and b"#" not in target
        and method != "CONNECT"
    ):
        form: tuple[bytes, bytes | None] | str = (target, None)  # origin-form, the usual
    else:
        form = origin_target(method, target)
    if isinstance(form, str):
        raise ProtocolError(f"{form}: {target[:60]!r}")
    target, authority = form
    if authority is not None:
        # RFC 9112 3.2.2: the target's authority, not Host, is the request's host
        headers = [(n, v) for n, v in headers if n.lower() != b"host"]
        headers.append((b"Host", authority))
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
