"""The request-target, Host and field-value rules, one row per case, each naming its RFC clause.

A row is a request head and what an app would see (PATH_INFO, QUERY_STRING,
HTTP_HOST, a header) or the status the server answers instead. Every row is
parsed whole and one byte at a time.
"""

from __future__ import annotations

import pytest

from sockactd.errors import ProtocolError
from sockactd.protocols.http import RequestHead, RequestParser
from sockactd.protocols.wsgi import http_environ, wsgi_keys

Seen = dict[str, str]


def app_view(head: bytes, step: int) -> Seen | int:
    """What the app sees of `head` (a few environ keys), or the status the server answers."""
    parser = RequestParser(8192)
    for i in range(0, len(head), step or len(head)):
        parser.feed(head[i : i + (step or len(head))])
    for event in parser.events:
        if isinstance(event, ProtocolError):
            return event.status
        if isinstance(event, RequestHead):
            environ = http_environ(
                dict(wsgi_keys("http", False, False)),
                event.method,
                event.target,
                event.version,
                event.headers,
                ("192.0.2.1", "4000"),
            )
            keys = ("PATH_INFO", "QUERY_STRING", "HTTP_HOST", "HTTP_X_A")
            return {key: str(environ[key]) for key in keys if key in environ}
    raise AssertionError(f"no request and no error in {parser.events}")


def request(target: bytes = b"/", *fields: bytes, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", *fields]
    return b"\r\n".join(lines) + b"\r\n\r\n"


H = b"Host: h"
ROWS: list[tuple[str, str, bytes, Seen | int]] = [
    # --- request-target ------------------------------------------------------------------
    ("RFC 9112 3.2.1", "origin-form", request(b"/a/b?c=d", H),
     {"PATH_INFO": "/a/b", "QUERY_STRING": "c=d", "HTTP_HOST": "h"}),
    ("RFC 9112 3.2.1", "origin-form, escapes decoded in PATH_INFO only",
     request(b"/a%20b?c=%20", H), {"PATH_INFO": "/a b", "QUERY_STRING": "c=%20"}),
    ("RFC 9112 3.2.2", "absolute-form: path and query from the target",
     request(b"http://a.example/x?y=1", b"Host: a.example"),
     {"PATH_INFO": "/x", "QUERY_STRING": "y=1", "HTTP_HOST": "a.example"}),
    ("RFC 9112 3.2.2", "absolute-form: MUST use its authority and ignore Host",
     request(b"http://a.example/x", b"Host: b.example"),
     {"PATH_INFO": "/x", "HTTP_HOST": "a.example"}),
    ("RFC 9112 3.2.2", "absolute-form with a port and no path",
     request(b"HTTPS://a.example:8443", b"Host: b"),
     {"PATH_INFO": "/", "HTTP_HOST": "a.example:8443"}),
    ("RFC 9112 3.2.2", "absolute-form with a query and no path",
     request(b"http://a.example?q", b"Host: b"), {"PATH_INFO": "/", "QUERY_STRING": "q"}),
    ("RFC 9112 3.2.2", "absolute-form, IPv6 literal authority",
     request(b"http://[2001:db8::1]:80/", b"Host: b"), {"HTTP_HOST": "[2001:db8::1]:80"}),
    ("RFC 9112 3 (SHOULD 400, SHOULD NOT autocorrect)", "absolute-form, invalid authority",
     request(b"s://]ufd/:", H, method=b"PUT"), 400),
    ("RFC 9110 4.2.1", "absolute-form, empty host", request(b"http:///x", H), 400),
    ("RFC 9110 4.2.4 (SHOULD treat userinfo as an error)", "absolute-form with userinfo",
     request(b"http://user@a.example/", H), 400),
    ("RFC 9112 3 (SHOULD 400)", "absolute-URI without an authority", request(b"urn:x:y", H), 400),
    ("RFC 9112 3 (SHOULD 400)", "scheme not starting with a letter",
     request(b"1http://a/", H), 400),
    ("RFC 9112 3.2.3", "authority-form only for CONNECT", request(b"a.example:443", H), 400),
    ("RFC 9110 9.3.6 (MUST reject an empty or invalid port)", "CONNECT without a port",
     request(b"a.example", H, method=b"CONNECT"), 400),
    ("RFC 9110 9.3.6 (MUST reject an empty or invalid port)", "CONNECT to port 0",
     request(b"a.example:0", H, method=b"CONNECT"), 400),
    ("RFC 9112 3.2.4", "asterisk-form for OPTIONS", request(b"*", H, method=b"OPTIONS"),
     {"PATH_INFO": "*"}),
    ("RFC 9112 3.2.4", "asterisk-form only for OPTIONS", request(b"*", H), 400),
    ("RFC 9112 3.2 (no fragment in a request-target)", "fragment", request(b"/a#f", H), 400),
    ("RFC 3986 2 (a URI is ASCII)", "raw UTF-8 in the path", request(b"/caf\xc3\xa9", H), 400),
    ("RFC 3986 2 (a URI is ASCII)", "raw UTF-8 in the query", request(b"/?q=\xc3\xa9", H), 400),
    ("RFC 9112 3 (SHOULD 400)", "HTAB in the target", request(b"/a\tb", H), 400),
    ("RFC 9112 3 (MUST 414)", "target longer than buffer-size", request(b"/" + b"y" * 8200, H),
     414),
    ("RFC 9110 15.5.20 / 5.4", "fields longer than buffer-size",
     request(b"/", H, b"X-A: " + b"y" * 8200), 431),
    ("RFC 9112 3 (peer compatibility, see fields.py)", "unencoded [] | {} in the query",
     request(b"/p?a[]=1|{x}", H), {"PATH_INFO": "/p", "QUERY_STRING": "a[]=1|{x}"}),
    # --- method --------------------------------------------------------------------------
    ("RFC 9110 9.1", "a method httptools knows", request(b"/", H, method=b"PURGE"),
     {"PATH_INFO": "/"}),
    ("RFC 9110 9.1 (SHOULD 501)", "unknown method", request(b"/", H, method=b"BREW"), 501),
    ("RFC 9110 9.1 (SHOULD 501; methods are case-sensitive)", "lowercase method",
     request(b"/", H, method=b"get"), 501),
    ("RFC 9112 3 (SHOULD 501)", "method longer than any", request(b"/", H, method=b"X" * 70),
     501),
    ("RFC 9112 3 (SHOULD 400)", "method that is not a token", request(b"/", H, method=b"G(T"),
     400),
    ("RFC 9112 3 (SHOULD 400)", "no space after the method", b"GET/ HTTP/1.1\r\nHost: h\r\n\r\n",
     400),
    # --- Host --------------------------------------------------------------------------------
    ("RFC 9112 3.2 (MUST 400)", "no Host in HTTP/1.1", request(b"/"), 400),
    ("RFC 9112 3.2 (MUST 400)", "two Host lines", request(b"/", H, H), 400),
    ("RFC 9112 3.2 (MUST 400)", "Host with a space", request(b"/", b"Host: a b"), 400),
    ("RFC 9112 3.2 (MUST 400)", "Host with two ports", request(b"/", b"Host: a:1:2"), 400),
    ("RFC 9112 3.2 (MUST 400)", "Host with a non-numeric port", request(b"/", b"Host: a:b"), 400),
    ("RFC 9112 3.2 (MUST 400)", "Host with userinfo", request(b"/", b"Host: u@a"), 400),
    ("RFC 9112 3.2 (MUST 400)", "Host with a path", request(b"/", b"Host: a/b"), 400),
    ("RFC 9112 3.2 (MUST 400)", "Host with a bad escape", request(b"/", b"Host: a%zz"), 400),
    ("RFC 9112 3.2 (MUST 400)", "Host with an unclosed IPv6 literal",
     request(b"/", b"Host: [::1"), 400),
    ("RFC 9112 3.2 (MUST 400)", "Host with a bad IPv6 literal",
     request(b"/", b"Host: [1:2:3]"), 400),
    ("RFC 9112 3.2", "Host: reg-name and port", request(b"/", b"Host: a.example:8080"),
     {"HTTP_HOST": "a.example:8080"}),
    ("RFC 9112 3.2", "Host: IPv6 literal and port", request(b"/", b"Host: [::1]:8080"),
     {"HTTP_HOST": "[::1]:8080"}),
    ("RFC 9112 3.2", "Host: IPvFuture literal", request(b"/", b"Host: [v1.x:y]"),
     {"HTTP_HOST": "[v1.x:y]"}),
    ("RFC 9112 3.2", "Host: empty (a URI without authority)", request(b"/", b"Host:"),
     {"HTTP_HOST": ""}),
    ("RFC 9110 5.5", "Host: trailing whitespace is not part of it",
     request(b"/", b"Host: 127.0.0.1 "), {"HTTP_HOST": "127.0.0.1"}),
    ("RFC 3986 3.2.2", "Host: escapes and sub-delims", request(b"/", b"Host: a%41!$&'()*+,;="),
     {"HTTP_HOST": "a%41!$&'()*+,;="}),
    # --- field values and names -----------------------------------------------------------
    ("RFC 9110 5.5", "leading and trailing SP/HTAB excluded",
     request(b"/", H, b"X-A: \t v \t"), {"HTTP_X_A": "v"}),
    ("RFC 9110 5.5", "inner SP/HTAB kept", request(b"/", H, b"X-A: a \t b"),
     {"HTTP_X_A": "a \t b"}),
    ("RFC 9110 5.5", "empty value", request(b"/", H, b"X-A:"), {"HTTP_X_A": ""}),
    ("RFC 9110 5.5", "obs-text kept (latin-1)", request(b"/", H, b"X-A: caf\xe9"),
     {"HTTP_X_A": "caf\xe9"}),
    ("RFC 9110 5.5 (MUST reject or replace NUL)", "NUL", request(b"/", H, b"X-A: a\x00b"), 400),
    ("RFC 9110 5.5 (MUST reject or replace CR)", "bare CR", request(b"/", H, b"X-A: a\rb"), 400),
    ("RFC 9110 5.5", "other control byte", request(b"/", H, b"X-A: a\x0bb"), 400),
    ("RFC 9110 5.5", "DEL", request(b"/", H, b"X-A: a\x7fb"), 400),
    ("RFC 9112 5.2 (MUST reject or unfold)", "obsolete line folding with SP",
     request(b"/", H, b"X-A: a", b" b"), 400),
    ("RFC 9112 5.2 (MUST reject or unfold)", "obsolete line folding with HTAB",
     request(b"/", H, b"X-A: a", b"\tb"), 400),
    ("RFC 9112 2.2 (MAY accept; refused, as llhttp does)", "bare LF ends a field line",
     b"GET / HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n", 400),
    ("RFC 9112 5.1 (MUST 400)", "whitespace between name and colon",
     request(b"/", H, b"X-A : v"), 400),
    ("RFC 9110 5.1", "space inside a field name", request(b"/", H, b"X A: v"), 400),
    ("RFC 9110 5.1", "empty field name", request(b"/", H, b": v"), 400),
    ("RFC 9110 5.1", "non-token byte in a field name", request(b"/", H, b"X(A): v"), 400),
]  # fmt: skip


@pytest.mark.parametrize(("clause", "case", "head", "expected"), ROWS, ids=[r[1] for r in ROWS])
@pytest.mark.parametrize("step", [0, 1])
def test_rfc_rules(
    clause: str, case: str, head: bytes, expected: Seen | int, step: int, http_checks: str
) -> None:
    seen = app_view(head, step)
    if isinstance(expected, int):
        assert seen == expected, f"{clause}: {case}"
    else:
        assert isinstance(seen, dict), f"{clause}: {case} refused with {seen}"
        assert {k: seen.get(k) for k in expected} == expected, f"{clause}: {case}"
