"""worker/http_handler.py's HttpHandler over a scripted connection: what a client receives.

Each test says which bytes arrive in which read, so a cut TCP could make is tested
every time, not by luck.
"""

from __future__ import annotations

import json

import pytest

from tests.apps.environ_echo import app as environ_app
from tests.unit.worker.wire import exchange, responses

GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
JSON_BODY = b'{\n  "a": 1,\n\t"b": 2\n}'


def seen(body: bytes) -> dict[str, str]:
    return dict(json.loads(body))


@pytest.mark.parametrize("cut", [None, 0, 1, 2])
def test_body_with_lf_space_after_the_head_end_is_not_folding(cut: int | None) -> None:
    # issue 13 defect 1: the head's final CRLF arrives with body bytes holding LF + SP/HTAB
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 21\r\n"
    stream = head + b"\r\n" + JSON_BODY
    at = len(head) + (cut or 0)
    chunks = [stream] if cut is None else [stream[:at], stream[at:]]
    ((status, body),) = responses(exchange(environ_app, chunks))
    assert status == 200
    assert seen(body)["body"] == JSON_BODY.decode()


@pytest.mark.parametrize("cut", [None, 0, 1, 2])
def test_chunked_body_with_crlf_space_after_the_head_end_is_not_folding(cut: int | None) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    stream = head + b"\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    at = len(head) + (cut or 0)
    chunks = [stream] if cut is None else [stream[:at], stream[at:]]
    ((status, body),) = responses(exchange(environ_app, chunks))
    assert (status, seen(body)["body"]) == (200, "hello world")


def test_requests_before_a_malformed_one_are_answered_in_order() -> None:
    # issue 13 defect 4: one write holding a valid request, then a malformed one
    received = exchange(environ_app, [GET + b"GET /b c HTTP/1.1\r\nHost: x\r\n\r\n"])
    statuses = [status for status, _ in responses(received)]
    assert statuses == [200, 400]


def test_after_connection_close_what_follows_is_ignored() -> None:
    first = b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    received = exchange(environ_app, [first + b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"])
    ((status, body),) = responses(received)
    assert (status, seen(body)["PATH_INFO"]) == (200, "/a")
    assert b"Connection: close" in received


def test_http_1_0_without_keep_alive_ignores_what_follows() -> None:
    received = exchange(environ_app, [b"GET /a HTTP/1.0\r\n\r\ngarbage \x00\r\n\r\n"])
    assert [status for status, _ in responses(received)] == [200]


def test_no_error_answer_when_the_connection_was_to_close_anyway() -> None:
    # keepalive-requests=1: the first response closes the connection, so the malformed
    # request after it gets no 400 the client could mistake for something else
    received = exchange(environ_app, [GET + b"BAD\x00\r\n\r\n"], keepalive_requests=1)
    assert [status for status, _ in responses(received)] == [200]
