"""protocols/chunked.py through the request parser: RFC 9112 7.1 chunked bodies, as a table."""

from __future__ import annotations

import pytest

from sockactd.errors import ProtocolError
from sockactd.protocols.chunked import chunk_size
from sockactd.protocols.http import END, RequestHead, RequestParser

HEAD = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
NEXT = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"


def parse(body: bytes, step: int) -> tuple[bytes, list[object]]:
    """(the body's bytes, the events after its END) for HEAD + body + NEXT fed in steps."""
    data = HEAD + body + NEXT
    parser = RequestParser(1024)
    for i in range(0, len(data), step or len(data)):
        parser.feed(data[i : i + (step or len(data))])
    events = parser.events
    for event in events:
        if isinstance(event, ProtocolError):
            raise event
    end = events.index(END)
    assert isinstance(events[0], RequestHead)
    return b"".join(e for e in events[1:end] if isinstance(e, bytes)), events[end + 1 :]


@pytest.mark.parametrize(
    ("clause", "body", "expected"),
    [
        ("7.1", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
        ("7.1", b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        ("7.1", b"000a\r\n0123456789\r\n000\r\n\r\n", b"0123456789"),
        ("7.1.1", b"5;a=b\r\nhello\r\n0\r\n\r\n", b"hello"),
        ("7.1.1 BWS before ;", b"5 ;a=b\r\nhello\r\n0\r\n\r\n", b"hello"),
        ("7.1.1 BWS after ;", b"5; a=b\r\nhello\r\n0\r\n\r\n", b"hello"),
        ("7.1.1 BWS around =", b"5;a = b\r\nhello\r\n0\r\n\r\n", b"hello"),
        ("7.1.1 HTAB BWS", b"5\t;\ta\t=\tb\r\nhello\r\n0\r\n\r\n", b"hello"),
        ("7.1.1 no value", b"5;a;b\r\nhello\r\n0;c\r\n\r\n", b"hello"),
        ("7.1.1 BWS before the next ;", b"5;a=b ;c \t; d\r\nhello\r\n0\r\n\r\n", b"hello"),
        ("7.1.1 quoted value", b'5;a="x;y \\" z"\r\nhello\r\n0\r\n\r\n', b"hello"),
        ("7.1.2 trailer dropped", b"5\r\nhello\r\n0\r\nX-T: 1\r\nX-U:\r\n\r\n", b"hello"),
        ("RFC 9110 2.3 data with CRLF, LF + SP", b"6\r\n\r\n \n\ta\r\n0\r\n\r\n", b"\r\n \n\ta"),
    ],
)
@pytest.mark.parametrize("step", [0, 1, 3])
def test_valid_chunked_bodies(clause: str, body: bytes, expected: bytes, step: int) -> None:
    data, after = parse(body, step)
    assert data == expected, clause
    assert isinstance(after[0], RequestHead) and after[0].target == b"/next"  # framing ends right


@pytest.mark.parametrize(
    ("clause", "body"),
    [
        ("7.1 size is 1*HEXDIG", b"zz\r\n"),
        ("7.1 size is 1*HEXDIG", b"\r\nhello\r\n0\r\n\r\n"),
        ("7.1 no sign", b"+5\r\nhello\r\n0\r\n\r\n"),
        ("7.1 no 0x", b"0x5\r\nhello\r\n0\r\n\r\n"),
        ("7.1 no leading whitespace", b" 5\r\nhello\r\n0\r\n\r\n"),
        ("7.1.1 BWS only before a ;", b"5 \r\nhello\r\n0\r\n\r\n"),
        ("7.1.1 BWS only before a ; or =", b"5;a=b \r\nhello\r\n0\r\n\r\n"),
        ("7.1.1 BWS only before a ; or =", b"5;a \r\nhello\r\n0\r\n\r\n"),
        ("7.1.1 extension name is a token", b"5;\r\nhello\r\n0\r\n\r\n"),
        ("7.1.1 extension name is a token", b"5;=b\r\nhello\r\n0\r\n\r\n"),
        ("7.1.1 value is token or quoted-string", b"5;a=\r\nhello\r\n0\r\n\r\n"),
        ("7.1.1 unterminated quoted-string", b'5;a="b\r\nhello\r\n0\r\n\r\n'),
        ("7.1.1 garbage after the extension", b"5;a=b c\r\nhello\r\n0\r\n\r\n"),
        ("7.1 size overflow", b"1" + b"0" * 16 + b"\r\n"),
        ("7.1 data longer than its size", b"5\r\nhello!\r\n0\r\n\r\n"),
        ("7.1 data not followed by CRLF", b"5\r\nhelloXY0\r\n\r\n"),
        ("2.2 bare LF after the size", b"5\nhello\r\n0\r\n\r\n"),
        ("2.2 bare CR in the size line", b"5\r;a\r\nhello\r\n0\r\n\r\n"),
        ("7.1.2 trailer field without a colon", b"0\r\nX-T\r\n\r\n"),
        ("7.1.2 trailer field name not a token", b"0\r\nX T: 1\r\n\r\n"),
        ("5.2 folding in a trailer", b"0\r\nX-T: 1\r\n 2\r\n\r\n"),
        ("RFC 9110 5.5 NUL in a trailer", b"0\r\nX-T: \x00\r\n\r\n"),
    ],
)
@pytest.mark.parametrize("step", [0, 1])
def test_malformed_chunked_bodies_get_400(clause: str, body: bytes, step: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(body, step)
    assert caught.value.status == 400, clause


def test_trailer_section_is_bounded_by_the_head_limit() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(b"0\r\n" + b"X-T: " + b"y" * 2000 + b"\r\n\r\n", 0)
    assert caught.value.status == 431


def test_chunk_size_line_is_bounded() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(b"5;a=" + b"b" * 2000, 1)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("line", "size"), [(b"0", 0), (b"ff", 255), (b"FF", 255), (b"ffffffffffffffff", 2**64 - 1)]
)
def test_chunk_size(line: bytes, size: int) -> None:
    assert chunk_size(line) == size
