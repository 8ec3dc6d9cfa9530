"""protocols/http.py: bytes in, events out; the bad-input rules as a table."""

from __future__ import annotations

import pytest

from sockactd.errors import ProtocolError
from sockactd.protocols.http import END, RequestHead, RequestParser

GET = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"


def parse(data: bytes, head_limit: int = 8192, body_limit: int = 0, step: int = 0) -> list[object]:
    parser = RequestParser(head_limit, body_limit)
    if step:
        for i in range(0, len(data), step):
            parser.feed(data[i : i + step])
    else:
        parser.feed(data)
    errors = [e for e in parser.events if isinstance(e, ProtocolError)]
    if errors:
        raise errors[0]
    return parser.events


def heads(events: list[object]) -> list[RequestHead]:
    return [e for e in events if isinstance(e, RequestHead)]


def body(events: list[object]) -> bytes:
    return b"".join(e for e in events if isinstance(e, bytes))


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("no Host in 1.1", b"GET / HTTP/1.1\r\n\r\n", 400),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (
            "Content-Length and Transfer-Encoding",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "differing Content-Lengths",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            400,
        ),
        ("Content-Length list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", 400),
        (
            "negative Content-Length",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            400,
        ),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
        ("space before colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        ("NUL in a value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400),
        ("TLS hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00", 400),
        ("space in target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (
            "bad chunk size",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
        (
            "gzip coding",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
        ),
        ("HTTP/2.0 line", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("chunked in 1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("long header", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 300 + b"\r\n\r\n", 431),
        ("long target", b"GET /" + b"y" * 300 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        ("unfinished long target", b"GET /" + b"y" * 300, 414),
        ("long target after an empty line", b"\r\nGET /" + b"y" * 300, 431),
        ("unfinished long head", b"GET / HTTP/1.1\r\nX: " + b"y" * 300, 431),
        ("body over limit", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", 413),
        (
            "chunked over limit",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" + b"x" * 101,
            413,
        ),
    ],
)
@pytest.mark.parametrize("step", [0, 1])
def test_bad_input(name: str, data: bytes, status: int, step: int, http_checks: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(data, head_limit=256, body_limit=100, step=step)
    assert caught.value.status == status, name


@pytest.mark.parametrize("step", [0, 1, 5])
def test_get_request(step: int) -> None:
    events = parse(GET, step=step)
    assert events[-1] is END
    (head,) = heads(events)
    assert (head.method, head.target, head.version) == ("GET", b"/a?b=1", "1.1")
    assert head.headers == [(b"Host", b"x")]
    assert head.keep_alive and not head.has_body and not head.expect_continue


@pytest.mark.parametrize(
    ("data", "keep_alive"),
    [
        (GET, True),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    ],
)
def test_keep_alive_as_asked(data: bytes, keep_alive: bool) -> None:
    (head,) = heads(parse(data))
    assert head.keep_alive is keep_alive


def test_pipelined_requests_come_out_in_order() -> None:
    post = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    events = parse(GET + post + GET, step=3)
    assert [h.target for h in heads(events)] == [b"/a?b=1", b"/p", b"/a?b=1"]
    assert events.count(END) == 3
    assert body(events) == b"hello"


@pytest.mark.parametrize("step", [0, 1, 4])
def test_chunked_body_with_trailer(step: int) -> None:
    data = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    events = parse(data, step=step)
    (head,) = heads(events)
    assert head.chunked and head.content_length is None and head.has_body
    assert body(events) == b"hello world"
    assert events[-1] is END
    assert (b"X-Trailer", b"t") not in head.headers


def test_expect_continue_only_for_1_1() -> None:
    ask = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    (head,) = heads(parse(ask))
    assert head.expect_continue
    old = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    (head,) = heads(parse(old))
    assert not head.expect_continue


def test_head_method_and_partial_body() -> None:
    parser = RequestParser(8192)
    parser.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
    assert parser.in_request and END not in parser.events
    parser.feed(b"56789")
    assert body(parser.events) == b"0123456789" and parser.events[-1] is END
    assert not parser.in_request


def test_upgrade_is_served_once_then_parsing_stops() -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nxx"
    parser = RequestParser(8192)
    parser.feed(data)
    (head,) = heads(parser.events)
    assert head.upgrade and parser.upgraded
    parser.feed(b"more bytes are ignored")


def test_duplicate_header_names_are_kept_in_order() -> None:
    data = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
    (head,) = heads(parse(data))
    assert head.headers[1:] == [(b"X-A", b"1"), (b"x-a", b"2")]
