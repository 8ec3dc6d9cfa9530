"""protocols/wsgi.py: environ building, wsgi.input, start_response rules, response heads."""

from __future__ import annotations

import io
import sys
from typing import Any
from wsgiref.validate import validator

import pytest

from sockactd.protocols.wsgi import (
    EMPTY_INPUT,
    FileWrapper,
    Framing,
    InputStream,
    ResponseError,
    StartResponse,
    http_environ,
    render_head,
    split_target,
    wsgi_keys,
)
from tests.apps import echo, hello, streaming


def base() -> dict[str, object]:
    env = wsgi_keys("http", multithread=False, multiprocess=True)
    env["SERVER_NAME"], env["SERVER_PORT"] = "127.0.0.1", "8000"
    return env


def environ(
    target: bytes = b"/", headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    env = http_environ(
        base(), "GET", target, "1.1", headers or [(b"Host", b"h")], ("10.0.0.1", "5")
    )
    env["wsgi.input"] = InputStream(iter([b""]).__next__)
    return env


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"/", "/", ""),
        (b"/a/b?x=1&y=2", "/a/b", "x=1&y=2"),
        (b"/caf%C3%A9", "/caf\xc3\xa9", ""),  # UTF-8 bytes, each as one latin-1 char (PEP 3333)
        (b"/caf\xc3\xa9", "/caf\xc3\xa9", ""),
        # raw non-ASCII bytes next to an escape: every byte still one latin-1 char
        (b"/caf\xc3\xa9%20x", "/caf\xc3\xa9 x", ""),
        (b"/a%2Fb%3F?q=%2F", "/a/b?", "q=%2F"),  # the query stays encoded
        (b"/%ff", "/\xff", ""),
    ],
)
def test_split_target(target: bytes, path: str, query: str) -> None:
    assert split_target(target)[:2] == (path, query)


def test_environ_has_every_pep_3333_key() -> None:
    headers = [
        (b"Host", b"h:8"),
        (b"Content-Type", b"text/plain"),
        (b"Content-Length", b"3"),
        (b"X-Two", b"a"),
        (b"x-two", b"b"),
        (b"Cookie", b"a=1"),
        (b"Cookie", b"b=2"),
        (b"X_Spoof", b"dropped"),
        (b"X-Latin", b"\xe9"),
    ]
    env = environ(b"/p%20q?z=1", headers)
    assert env["REQUEST_METHOD"] == "GET"
    assert (env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"]) == ("", "/p q", "z=1")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", "8000")
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("10.0.0.1", "5")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (env["CONTENT_TYPE"], env["CONTENT_LENGTH"]) == ("text/plain", "3")
    assert "HTTP_CONTENT_TYPE" not in env
    assert env["HTTP_HOST"] == "h:8"
    assert env["HTTP_X_TWO"] == "a, b"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["HTTP_X_LATIN"] == "\xe9"
    assert "HTTP_X_SPOOF" not in env
    assert env["wsgi.version"] == (1, 0) and env["wsgi.url_scheme"] == "http"
    assert env["wsgi.errors"] is sys.stderr
    assert (env["wsgi.multithread"], env["wsgi.multiprocess"], env["wsgi.run_once"]) == (
        False,
        True,
        False,
    )
    assert env["wsgi.file_wrapper"] is FileWrapper


class Recording(StartResponse):
    """start_response whose write() keeps what the app wrote (the worker's Response sends)."""

    __slots__ = ("sent",)

    def __init__(self, sent: list[bytes]) -> None:
        super().__init__()
        self.sent = sent

    def write(self, data: bytes) -> None:
        self.sent.append(data)


def run_validated(app: Any, env: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Call `app` under wsgiref's validator with our environ and start_response."""
    sent: list[bytes] = []
    start = Recording(sent)
    result = validator(app)(env, start)
    try:
        body = b"".join(result)
    finally:
        result.close()  # type: ignore[attr-defined]
    assert start.status is not None
    return start.status, start.headers, b"".join(sent) + body


@pytest.mark.parametrize("app", [hello.app, echo.app, streaming.app])
def test_apps_pass_wsgiref_validator(app: Any) -> None:
    status, _, _ = run_validated(app, environ(b"/?how=readline"))
    assert status.startswith("200")


def pieces(*chunks: bytes) -> InputStream:
    source = iter([*chunks, b""])
    return InputStream(lambda: next(source))


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda s: s.read(), b"ab\ncd\nef"),
        (lambda s: s.read(3), b"ab\n"),
        (lambda s: s.read(100), b"ab\ncd\nef"),
        (lambda s: s.read(None), b"ab\ncd\nef"),
        (lambda s: s.readline(), b"ab\n"),
        (lambda s: s.readline(1), b"a"),
        (
            lambda s: [s.readline(), s.readline(), s.readline(), s.readline()],
            [b"ab\n", b"cd\n", b"ef", b""],
        ),
        (lambda s: s.readlines(), [b"ab\n", b"cd\n", b"ef"]),
        (lambda s: s.readlines(2), [b"ab\n"]),
        (lambda s: list(s), [b"ab\n", b"cd\n", b"ef"]),
        (lambda s: [s.read(1), s.read(0), s.read()], [b"a", b"", b"b\ncd\nef"]),
    ],
)
def test_input_stream(call: Any, expected: object) -> None:
    assert call(pieces(b"a", b"b\nc", b"d\nef")) == expected


def test_input_stream_passes_a_cut_short_body_on() -> None:
    def pull() -> bytes:
        raise ConnectionResetError("client went away")

    stream = InputStream(pull)
    with pytest.raises(OSError):
        stream.read()


def ok(headers: list[tuple[str, str]]) -> StartResponse:
    start = StartResponse()
    start("200 OK", headers)
    return start


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200", []),
        ("OK", []),
        ("2000 OK", []),
        ("200 OK\r\nX: y", []),
        (b"200 OK", []),
        ("200 OK", [("Connection", "close")]),
        ("200 OK", [("Transfer-Encoding", "chunked")]),
        ("200 OK", [("keep-alive", "5")]),
        ("200 OK", [("Upgrade", "h2c")]),
        ("200 OK", [("X-A", "b\r\nSet-Cookie: evil")]),
        ("200 OK", [("X-A", "b\nc")]),
        ("200 OK", [("Bad Name", "v")]),
        ("200 OK", [("X-A", 1)]),
        ("200 OK", [("X-A",)]),
        ("200 OK", (("X-A", "b"),)),
        ("200 OK", [("Content-Length", "ten")]),
        ("200 OK\x7f", []),
        ("200 \xe9\x00", []),  # a control byte after latin-1 text
        ("200 OK", [("", "v")]),
        ("200 OK", [("X:A", "v")]),
        ("200 OK", [("X-\xe9", "v")]),  # names are ASCII tokens
        ("200 OK", [("X-A", "\xe9\x00")]),
        ("200 OK", [("X-A", "b\x7f")]),
        ("200 OK", [("X-A", "\x1f")]),
    ],
)
def test_start_response_refuses(status: Any, headers: Any) -> None:
    with pytest.raises(ResponseError):
        StartResponse()(status, headers)


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200 OK", [("X-A", "b\tc")]),  # HTAB is allowed in a value
        ("200 Caf\xe9", [("X-A", "caf\xe9 \xa0\x85")]),  # latin-1, printable or not
        ("200 OK", [("!#$%&'*+-.^_`|~09azAZ", "")]),  # every token character, empty value
    ],
)
def test_start_response_accepts(status: str, headers: list[tuple[str, str]]) -> None:
    start = StartResponse()
    start(status, headers)
    assert (start.status, start.headers) == (status, headers)


def test_start_response_records_content_length() -> None:
    assert ok([("Content-Length", "12")]).content_length == 12
    assert ok([("X", "y")]).content_length is None


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Length", "12"), ("X", "y")],
        [("X", "y"), ("Content-Length", "12")],
        [("Content-Length", "12")] + [("X-N", str(n)) for n in range(600)],  # fills the memo
    ],
)
def test_start_response_remembers_checked_headers_and_their_length(
    headers: list[tuple[str, str]],
) -> None:
    for _ in range(3):  # the first call checks each pair, later ones find it checked
        assert ok(list(headers)).content_length == 12
        for bad in ([("Connection", "close")], [("X", "a\nb")], [("Content-Length", "x")]):
            with pytest.raises(ResponseError):  # a refused pair is never remembered
                StartResponse()("200 OK", headers + bad)


@pytest.mark.parametrize("status", ["200", "2xx OK", "200 A\nB", "200 A\x00"])
def test_a_refused_status_stays_refused(status: str) -> None:
    StartResponse()("200 OK", [])  # a good status is remembered as checked ...
    for _ in range(2):  # ... a bad one never is
        with pytest.raises(ResponseError):
            StartResponse()(status, [])


def test_empty_input_is_at_its_end_and_stays_so() -> None:
    for _ in range(2):
        assert EMPTY_INPUT.read() == b""
        assert EMPTY_INPUT.read(10) == b""
        assert EMPTY_INPUT.readline() == b""
        assert EMPTY_INPUT.readlines() == []
        assert list(EMPTY_INPUT) == []
        assert EMPTY_INPUT.drain(100)


def test_start_response_twice_needs_exc_info() -> None:
    start = ok([])
    with pytest.raises(ResponseError):
        start("500 Oops", [])
    try:
        raise ValueError("x")
    except ValueError:
        start("500 Oops", [], sys.exc_info())
    assert start.status == "500 Oops"


def test_exc_info_after_headers_sent_reraises() -> None:
    start = ok([])
    start.headers_sent = True
    try:
        raise KeyError("original")
    except KeyError:
        info = sys.exc_info()
    with pytest.raises(KeyError, match="original"):
        start("500 Oops", [], info)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("framing", "length", "connection", "expected"),
    [
        (Framing.LENGTH, 5, None, b"Content-Length: 5\r\n\r\n"),
        (Framing.CHUNKED, None, None, b"Transfer-Encoding: chunked\r\n\r\n"),
        (Framing.UNTIL_CLOSE, None, "close", b"Connection: close\r\n\r\n"),
        (Framing.LENGTH, None, "keep-alive", b"X: y\r\nConnection: keep-alive\r\n\r\n"),
    ],
)
def test_render_head(
    framing: Framing, length: int | None, connection: str | None, expected: bytes
) -> None:
    head = render_head("200 OK", [("X", "y")], framing, length, connection, "DATE")
    assert head.startswith(b"HTTP/1.1 200 OK\r\nDate: DATE\r\nX: y\r\n")
    assert head.endswith(expected)


def test_file_wrapper_span_and_iteration(tmp_path: Any) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    with path.open("rb") as handle:
        handle.seek(3)
        wrapper = FileWrapper(handle, 4)
        span = wrapper.sendfile_span()
        assert span is not None and span[1:] == (3, 7)
        assert list(wrapper) == [b"3456", b"789"]
    memory = FileWrapper(io.BytesIO(b"abc"), 2)
    assert memory.sendfile_span() is None
    assert list(memory) == [b"ab", b"c"]


def test_file_wrapper_passes_close_through() -> None:
    handle = io.BytesIO(b"x")
    FileWrapper(handle).close()  # type: ignore[attr-defined]
    assert handle.closed


def test_the_header_name_token_set_is_fields_tchar_set_as_str() -> None:
    """wsgi.py spells RFC 9110's tchar set again, as str, to keep protocols/fields.py off a
    uwsgi-only worker's start-up path; the two must not drift apart."""
    from sockactd.protocols import fields, wsgi

    assert fields.TOKEN.decode("ascii") == wsgi._TOKEN_CHARS
