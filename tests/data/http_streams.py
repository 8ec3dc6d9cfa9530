"""Raw byte streams a client may send on one connection, for the cut-independence tests.

Each entry is (name, stream, statuses answered). Valid, pipelined, chunked, bodies holding CRLF, LF,
SP and HTAB, requests that close the connection with bytes after them, and
malformed ones after valid ones. The tests send each stream whole, one byte at a
time and cut at random points, and expect the same answers every time, with these
statuses (1xx left out); what the app saw is checked by the unit tables
(tests/unit/protocols/, tests/unit/worker/test_http_handler.py).
Settings these streams assume: buffer-size 1024, limit-post 2000.
"""

from __future__ import annotations

__all__ = ["STREAMS"]

_GET = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"
_JSON = b'{\n  "a": 1,\n\t"b": "x\r\n y"\n}'
_POST_JSON = b"POST /j HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(_JSON), _JSON)
_CHUNKED = (
    b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'5\r\nhello\r\n7 ; ext = "q;\\""\r\n\n\t wo\r\n\r\n4;a\r\nrld\n\r\n'
    b"0\r\nX-Trailer: t\r\n\r\n"
)

STREAMS: list[tuple[str, bytes, list[int]]] = [
    ("one GET", _GET, [200]),
    ("GET with fields", b"GET / HTTP/1.1\r\nHost: x \r\nX-A:\t v \t\r\nCookie: a=1\r\n"
     b"cookie: b=2\r\n\r\n", [200]),
    ("POST whose body holds LF + SP/HTAB", _POST_JSON, [200]),
    ("chunked with extensions, trailer, CR/LF/SP/HTAB in data", _CHUNKED, [200]),
    ("pipelined GET, POST, chunked, GET", _GET + _POST_JSON + _CHUNKED + _GET,
     [200, 200, 200, 200]),
    ("empty lines before a request", b"\r\n\r\n" + _GET, [200]),
    ("Connection: close, then more", b"GET /1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
     + _GET, [200]),
    ("HTTP/1.0, then more", b"GET /1 HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n", [200]),
    ("HTTP/1.0 keep-alive, then more", b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
     b"GET /2 HTTP/1.0\r\n\r\n", [200, 200]),
    ("absolute-form with another Host", b"GET http://a.example/x?y HTTP/1.1\r\nHost: b\r\n\r\n",
     [200]),
    ("Expect: 100-continue", b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
     b"Content-Length: 4\r\n\r\nbody" + _GET, [200, 200]),
    ("valid, then a space in the target", _GET + b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
     [200, 400]),
    ("valid, then folding", _GET + b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", [200, 400]),
    ("valid, then an invalid Host", _GET + b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", [200, 400]),
    ("valid, then two Hosts", _GET + b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", [200, 400]),
    ("valid, then bare LF", _GET + b"GET / HTTP/1.1\nHost: x\n\n", [200, 400]),
    ("valid, then CL and TE", _GET + b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [200, 400]),
    ("bad chunk size", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\nzz\r\n", [400]),
    ("chunk data not ended by CRLF", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
     b"\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", [400]),
    ("body over limit-post", _GET + b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2001\r\n\r\n",
     [200, 413]),
    ("chunked body over limit-post", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
     b"\r\n\r\n7d1\r\n" + b"y" * 2001 + b"\r\n0\r\n\r\n", [413]),
    ("head over buffer-size", _GET + b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 1100
     + b"\r\n\r\n", [200, 431]),
    ("target over buffer-size", _GET + b"GET /" + b"y" * 1100 + b" HTTP/1.1\r\n\r\n",
     [200, 414]),
    ("head just under buffer-size", b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 980
     + b"\r\n\r\n", [200]),
    ("body cut short by the end of the stream", b"POST / HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 10\r\n\r\nabc", [400]),
    ("head cut short by the end of the stream", _GET + b"GET / HTTP/1.1\r\nHo", [200]),
    ("valid, then an unknown method", _GET + b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
     [200, 501]),
    ("a word and an empty line", b"HELLO\r\n\r\n", [400]),
    ("TLS client hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", [400]),
    ("Upgrade, then bytes of the new protocol", b"GET /ws HTTP/1.1\r\nHost: x\r\n"
     b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello", [200]),
]  # fmt: skip
