"""Tables for the uwsgi request parser and the environ it produces.

Packets are built here with struct, in the shape nginx's uwsgi module sends
(uwsgi_params order, then one HTTP_* var per request header).
"""

from __future__ import annotations

import struct

import pytest

from sockactd.errors import ProtocolError
from sockactd.protocols import uwsgi
from sockactd.protocols.uwsgi import UwsgiHead, UwsgiRequestParser, environ_from_vars

LIMIT = 16384


def encode_vars(pairs: list[tuple[str, str]]) -> bytes:
    out = bytearray()
    for key, value in pairs:
        for part in (key.encode("latin-1"), value.encode("latin-1")):
            out += struct.pack("<H", len(part)) + part
    return bytes(out)


def packet(pairs: list[tuple[str, str]], modifier1: int = 0, modifier2: int = 0) -> bytes:
    block = encode_vars(pairs)
    return struct.pack("<BHB", modifier1, len(block), modifier2) + block


# What nginx 1.22 sends for `curl -d 'a=1' 'http://localhost:8080/caf%C3%A9/x?q=1'`
# through `uwsgi_pass` with the standard uwsgi_params.
NGINX_POST = [
    ("QUERY_STRING", "q=1"),
    ("REQUEST_METHOD", "POST"),
    ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
    ("CONTENT_LENGTH", "3"),
    ("REQUEST_URI", "/caf%C3%A9/x?q=1"),
    ("PATH_INFO", "/caf\xc3\xa9/x"),
    ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "http"),
    ("REMOTE_ADDR", "127.0.0.1"),
    ("REMOTE_PORT", "51234"),
    ("SERVER_PORT", "8080"),
    ("SERVER_NAME", "localhost"),
    ("HTTP_HOST", "localhost"),
    ("HTTP_USER_AGENT", "curl/7.88.1"),
    ("HTTP_ACCEPT", "*/*"),
    ("HTTP_CONTENT_LENGTH", "3"),
    ("HTTP_CONTENT_TYPE", "application/x-www-form-urlencoded"),
]


def feed_all(data: bytes, limit: int = LIMIT) -> tuple[UwsgiHead | None, UwsgiRequestParser]:
    parser = UwsgiRequestParser(limit)
    return parser.feed(data), parser


def test_nginx_post_packet_parses_whole() -> None:
    head, parser = feed_all(packet(NGINX_POST, modifier2=0) + b"a=1")
    assert head == UwsgiHead(0, 0, dict(NGINX_POST))
    assert parser.remainder == b"a=1"


@pytest.mark.parametrize("cut", range(len(packet(NGINX_POST))))
def test_split_at_every_byte_boundary(cut: int) -> None:
    data = packet(NGINX_POST) + b"a=1"
    parser = UwsgiRequestParser(LIMIT)
    first = parser.feed(data[:cut])
    assert first is None
    head = parser.feed(data[cut:])
    assert head is not None
    assert head.vars == dict(NGINX_POST)
    assert parser.remainder == b"a=1"


def test_byte_at_a_time() -> None:
    data = packet(NGINX_POST)
    parser = UwsgiRequestParser(LIMIT)
    results = [parser.feed(data[i : i + 1]) for i in range(len(data))]
    assert results[:-1] == [None] * (len(data) - 1)
    assert results[-1] is not None
    assert parser.remainder == b""


def test_feeding_a_finished_parser_is_a_bug() -> None:
    head, parser = feed_all(packet([("REQUEST_METHOD", "GET")]))
    assert head is not None
    with pytest.raises(RuntimeError):
        parser.feed(b"more")


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], {}),
        ([("REQUEST_METHOD", "GET")], {"REQUEST_METHOD": "GET"}),
        ([("EMPTY", "")], {"EMPTY": ""}),
        ([("HTTP_X_BYTES", "\xff\x00\x7f")], {"HTTP_X_BYTES": "\xff\x00\x7f"}),
        ([("HTTP_ACCEPT", "a"), ("HTTP_ACCEPT", "b")], {"HTTP_ACCEPT": "a, b"}),
        ([("HTTP_COOKIE", "a=1"), ("HTTP_COOKIE", "b=2")], {"HTTP_COOKIE": "a=1; b=2"}),
        ([("SERVER_NAME", "a"), ("SERVER_NAME", "b")], {"SERVER_NAME": "b"}),
        ([("K", "v" * 5000)], {"K": "v" * 5000}),
        # lengths of 256 and more: the high byte of the u16 is set (256: low byte 0)
        ([("K" * 256, "v" * 256)], {"K" * 256: "v" * 256}),
        ([("N" * 300, "\xe9" * 300), ("B", "")], {"N" * 300: "\xe9" * 300, "B": ""}),
    ],
)
def test_vars_table(pairs: list[tuple[str, str]], expected: dict[str, str]) -> None:
    head, _ = feed_all(packet(pairs, modifier2=7))
    assert head == UwsgiHead(0, 7, expected)


def test_fast_parse_reads_long_lengths_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    # The careful parser gives the same dicts, so only this shows that the fast loop
    # reads the high byte of each length (set from 256 on) rather than falling back.
    def refuse(block: bytes, text: str) -> dict[str, str]:
        raise AssertionError("a well-formed block fell back to _parse_vars_checked")

    monkeypatch.setattr(uwsgi, "_parse_vars_checked", refuse)
    pairs = [*NGINX_POST, ("K" * 256, "v" * 256), ("N" * 300, "\xe9\x00" * 150), ("B", "")]
    block = encode_vars(pairs)
    data = header(0, len(block)) + block
    assert uwsgi._parse_vars(data, len(data)) == dict(pairs)
    assert uwsgi._parse_vars(data + b"body", len(data)) == dict(pairs)  # a body follows


def header(modifier1: int, size: int, modifier2: int = 0) -> bytes:
    return struct.pack("<BHB", modifier1, size, modifier2)


@pytest.mark.parametrize(
    ("data", "limit", "message"),
    [
        # refused from the 4-byte header alone, before any vars arrive
        (header(5, 10), LIMIT, "modifier1=5"),
        (header(30, 0), LIMIT, "modifier1=30"),
        (header(0, 101), 100, "exceeds limit 100"),
        (header(0, 65535), LIMIT, "exceeds limit"),
        # lengths that run past the block
        (header(0, 1) + b"\x05", LIMIT, "key length cut"),
        (header(0, 3) + b"\x05\x00k", LIMIT, "key of 5 bytes"),
        (header(0, 4) + b"\x01\x00k\x00", LIMIT, "value length cut"),
        (header(0, 5) + b"\x01\x00k\x09\x00", LIMIT, "value of 9 bytes"),
        (header(0, 5) + encode_vars([("k", "v")])[:5], LIMIT, "value of 1 bytes"),
        (header(0, 4) + b"\x00\x01kk", LIMIT, "key of 256 bytes"),
        (header(0, 7) + b"\x01\x00k\x2c\x01vv", LIMIT, "value of 300 bytes"),
        (header(0, 4) + b"\x00\x00\x00\x00", LIMIT, "empty name"),
    ],
)
def test_bad_packets(data: bytes, limit: int, message: str) -> None:
    parser = UwsgiRequestParser(limit)
    with pytest.raises(ProtocolError, match=message):
        parser.feed(data)


def test_limit_is_inclusive() -> None:
    block = encode_vars([("K", "x" * 95)])
    assert len(block) == 100
    head, _ = feed_all(header(0, 100) + block, limit=100)
    assert head is not None


def test_truncated_packet_waits_rather_than_guessing() -> None:
    # a short read is not an error: the rest may still come
    head, _ = feed_all(packet(NGINX_POST)[:-1])
    assert head is None


def environ(pairs: list[tuple[str, str]]) -> dict[str, object]:
    return environ_from_vars(UwsgiHead(0, 0, dict(pairs)))


GET = [("REQUEST_METHOD", "GET")]


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (
            GET,
            {
                "SCRIPT_NAME": "",
                "PATH_INFO": "",
                "QUERY_STRING": "",
                "SERVER_NAME": "localhost",
                "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "wsgi.url_scheme": "http",
            },
        ),
        # nginx sent only REQUEST_URI: PATH_INFO is its path, percent-decoded as latin-1
        ([*GET, ("REQUEST_URI", "/a%20b/caf%C3%A9?x=%41")], {"PATH_INFO": "/a b/caf\xc3\xa9"}),
        ([*GET, ("REQUEST_URI", "/a%20b?x=%41")], {"QUERY_STRING": "x=%41"}),
        ([*GET, ("REQUEST_URI", "/p?x"), ("QUERY_STRING", "y")], {"QUERY_STRING": "y"}),
        ([*GET, ("REQUEST_URI", "/p%2Fq")], {"PATH_INFO": "/p/q"}),
        # raw non-ASCII bytes (vars are latin-1) survive, with or without an escape
        ([*GET, ("REQUEST_URI", "/caf\xc3\xa9")], {"PATH_INFO": "/caf\xc3\xa9"}),
        ([*GET, ("REQUEST_URI", "/caf\xc3\xa9%20x")], {"PATH_INFO": "/caf\xc3\xa9 x"}),
        ([*GET, ("REQUEST_URI", "http://h:1/abs/p?q")], {"PATH_INFO": "/abs/p"}),
        (
            [*GET, ("REQUEST_URI", "/app/x/y"), ("SCRIPT_NAME", "/app")],
            {"PATH_INFO": "/x/y", "SCRIPT_NAME": "/app"},
        ),
        (
            [*GET, ("REQUEST_URI", "/application"), ("SCRIPT_NAME", "/app")],
            {"PATH_INFO": "/application"},
        ),
        # PATH_INFO from nginx wins over REQUEST_URI
        ([*GET, ("REQUEST_URI", "/raw%20"), ("PATH_INFO", "/given")], {"PATH_INFO": "/given"}),
        # scheme
        ([*GET, ("HTTPS", "on")], {"wsgi.url_scheme": "https", "SERVER_PORT": "443"}),
        ([*GET, ("HTTPS", "1")], {"wsgi.url_scheme": "https"}),
        ([*GET, ("HTTPS", "ON")], {"wsgi.url_scheme": "https"}),
        ([*GET, ("HTTPS", "off")], {"wsgi.url_scheme": "http"}),
        ([*GET, ("UWSGI_SCHEME", "https")], {"wsgi.url_scheme": "https"}),
        ([*GET, ("UWSGI_SCHEME", "http")], {"wsgi.url_scheme": "http"}),
        ([*GET, ("HTTPS", "on"), ("SERVER_PORT", "8443")], {"SERVER_PORT": "8443"}),
        # server name from Host when nginx did not send SERVER_NAME
        ([*GET, ("HTTP_HOST", "example.org:8080")], {"SERVER_NAME": "example.org"}),
        ([*GET, ("HTTP_HOST", "[::1]:8080")], {"SERVER_NAME": "[::1]"}),
        ([*GET, ("SERVER_PROTOCOL", "HTTP/1.0")], {"SERVER_PROTOCOL": "HTTP/1.0"}),
        # every var goes straight through
        (NGINX_POST, {**dict(NGINX_POST), "wsgi.url_scheme": "http"}),
        ([*GET, ("CONTENT_LENGTH", "")], {"CONTENT_LENGTH": ""}),
        ([*GET, ("CONTENT_LENGTH", "0")], {"CONTENT_LENGTH": "0"}),
        ([*GET, ("CONTENT_LENGTH", "5000000")], {"CONTENT_LENGTH": "5000000"}),
    ],
)
def test_environ_table(pairs: list[tuple[str, str]], expected: dict[str, object]) -> None:
    env = environ(pairs)
    assert {key: env.get(key) for key in expected} == expected


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([], "without REQUEST_METHOD"),
        ([("REQUEST_METHOD", "")], "without REQUEST_METHOD"),
        ([*GET, ("CONTENT_LENGTH", "-1")], "CONTENT_LENGTH"),
        ([*GET, ("CONTENT_LENGTH", "1.5")], "CONTENT_LENGTH"),
        ([*GET, ("CONTENT_LENGTH", " 3")], "CONTENT_LENGTH"),
        ([*GET, ("CONTENT_LENGTH", "\u0663")], "CONTENT_LENGTH"),  # a non-ASCII digit
        ([*GET, ("CONTENT_LENGTH", "\xb2")], "CONTENT_LENGTH"),  # a latin-1 superscript two
        ([*GET, ("CONTENT_LENGTH", "abc")], "CONTENT_LENGTH"),
    ],
)
def test_environ_refuses(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        environ(pairs)


def test_environ_does_not_alias_the_head() -> None:
    head = UwsgiHead(0, 0, dict(GET))
    env = environ_from_vars(head)
    env["PATH_INFO"] = "/changed"
    assert "PATH_INFO" not in head.vars


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        # the listener's keys stay, vars are laid over them, defaults fill what is missing
        (GET, {"wsgi.version": (1, 0), "SCRIPT_NAME": "", "wsgi.url_scheme": "http"}),
        ([*GET, ("SCRIPT_NAME", "/app")], {"SCRIPT_NAME": "/app", "wsgi.version": (1, 0)}),
        ([*GET, ("HTTPS", "on")], {"wsgi.url_scheme": "https", "SERVER_PORT": "443"}),
        ([*GET, ("SERVER_NAME", "given")], {"SERVER_NAME": "given", "SERVER_PORT": "80"}),
    ],
)
def test_environ_over_a_base(pairs: list[tuple[str, str]], expected: dict[str, object]) -> None:
    base: dict[str, object] = {"wsgi.version": (1, 0), "wsgi.url_scheme": "http", "SCRIPT_NAME": ""}
    kept = dict(base)
    env = environ_from_vars(UwsgiHead(0, 0, dict(pairs)), base)
    assert {key: env[key] for key in expected} == expected
    assert env == {**environ(pairs), "wsgi.version": (1, 0)}  # the same as without a base
    assert base == kept  # the caller's base is copied, never changed


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        # repeated vars anywhere in the block are merged, whatever the fast parse saw
        ([("A", "1"), ("HTTP_X", "a"), ("B", "2"), ("HTTP_X", "b")], {"HTTP_X": "a, b"}),
        ([("HTTP_X", "a"), ("HTTP_X", "b"), ("HTTP_X", "c")], {"HTTP_X": "a, b, c"}),
        ([("X", "1"), ("X", "2")], {"X": "2"}),  # not a header: the last one wins
        ([("HTTP_X", "a" * 300), ("Y", ""), ("HTTP_X", "b")], {"HTTP_X": "a" * 300 + ", b"}),
        ([("K", "")], {"K": ""}),
        ([("K", "\xe9\x00\xff")], {"K": "\xe9\x00\xff"}),  # any byte, as latin-1
    ],
)
def test_vars_parse(pairs: list[tuple[str, str]], expected: dict[str, str]) -> None:
    head, parser = feed_all(header(0, len(encode_vars(pairs))) + encode_vars(pairs) + b"body")
    assert head is not None
    assert {key: head.vars[key] for key in expected} == expected
    assert parser.remainder == b"body"
