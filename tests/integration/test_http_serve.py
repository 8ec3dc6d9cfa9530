"""serve() in forked children on 127.0.0.1 with real clients: HTTP/1.1 end to end.

Each test forks its own worker(s) through tests/integration/serve_child.py and
kills them by PID when it ends.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest

from tests.apps import echo, file_wrapper, hello, raising, slow, streaming
from tests.integration.serve_child import serving
from tests.support import wait_until


@contextmanager
def connect(port: int, timeout: float = 5.0) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        yield sock


def read_until_close(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def read_response(sock: socket.socket) -> http.client.HTTPResponse:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response


def get(
    port: int, path: str = "/", method: str = "GET", **kw: Any
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, **kw)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_keep_alive_requests_share_one_connection() -> None:
    with serving(echo.app) as served:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        try:
            for i in range(5):
                conn.request("POST", "/?how=chunks", body=b"x" * i * 10)
                response = conn.getresponse()
                assert response.read() == b"x" * i * 10
                assert response.getheader("Content-Length") == str(i * 10)
                assert response.getheader("Connection") is None
                assert response.getheader("Date")
            assert conn.sock is not None
        finally:
            conn.close()


@pytest.mark.parametrize("how", ["read", "readall", "readline", "iter", "chunks"])
def test_chunked_request_body(how: str) -> None:
    body = b"line one\nline two\n" * 500
    with serving(echo.app) as served, connect(served.port) as sock:
        chunks = b"".join(
            b"%x\r\n%b\r\n" % (len(body[i : i + 1000]), body[i : i + 1000])
            for i in range(0, len(body), 1000)
        )
        sock.sendall(
            f"POST /?how={how} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + chunks
            + b"0\r\n\r\n"
        )
        response = read_response(sock)
        assert response.status == 200 and response.read() == body


def test_expect_100_continue_sent_when_the_app_reads() -> None:
    with serving(echo.app) as served, connect(served.port) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"body")
        response = read_response(sock)
        assert response.read() == b"body"


def test_expect_100_continue_not_sent_when_the_app_does_not_read() -> None:
    with serving(hello.app) as served, connect(served.port) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
        )
        data = read_until_close(sock)  # closed: the unsent body makes the connection unusable
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"100 Continue" not in data and b"Connection: close\r\n" in data


def test_head_has_length_but_no_body() -> None:
    with serving(hello.app) as served, connect(served.port) as sock:
        sock.sendall(
            b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        data = read_until_close(sock)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert b"Content-Length: 14" in head
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n")  # HEAD sent no body before the next response
        assert rest.endswith(b"\r\n\r\nHello, world!\n")


def test_pipelined_requests_answered_in_order() -> None:
    with serving(echo.app) as served, connect(served.port) as sock:
        sock.sendall(
            b"POST /?how=read HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\none"
            b"POST /?how=none HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\ntwo"
            b"POST /?how=read HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
            b"Connection: close\r\n\r\nthree"
        )
        data = read_until_close(sock)
        assert data.count(b"HTTP/1.1 200 OK") == 3
        assert data.endswith(b"three")
        assert data.index(b"one") < data.index(b"three")


def test_requests_before_a_malformed_one_are_answered_then_the_error() -> None:
    # issue 13 defect 4: one 400 for all of it read as the answer to the valid request
    with serving(echo.app) as served, connect(served.port) as sock:
        sock.sendall(
            b"POST /?how=read HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\none"
            b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        first_end = data.index(b"\r\n\r\none") + 7
        assert data[first_end:].startswith(b"HTTP/1.1 400 Bad Request\r\n")


@pytest.mark.parametrize(
    "first",
    [
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ],
)
def test_bytes_after_a_request_that_closes_are_ignored(first: bytes) -> None:
    with serving(echo.app) as served, connect(served.port) as sock:
        sock.sendall(first + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n\x00garbage")
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert data.count(b"HTTP/1.1 ") == 1


@pytest.mark.parametrize(
    ("version", "framing"),
    [("1.1", b"Transfer-Encoding: chunked"), ("1.0", b"Connection: close")],
)
def test_unknown_length_is_chunked_for_1_1_and_close_delimited_for_1_0(
    version: str, framing: bytes
) -> None:
    with serving(streaming.app) as served, connect(served.port) as sock:
        sock.sendall(f"GET /?n=3 HTTP/{version}\r\nHost: t\r\n\r\n".encode())
        if version == "1.1":
            response = read_response(sock)
            assert response.getheader("Transfer-Encoding") == "chunked"
            assert response.read() == b"piece 0\npiece 1\npiece 2\n"
        else:
            data = read_until_close(sock)
            assert framing in data and data.endswith(b"piece 0\npiece 1\npiece 2\n")


def test_write_callable_then_iterable() -> None:
    with serving(streaming.app) as served:
        assert get(served.port, "/write")[2] == b"written then returned"


def test_http_1_0_keep_alive_only_when_asked() -> None:
    with serving(hello.app) as served, connect(served.port) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = read_response(sock)
        assert response.getheader("Connection") == "keep-alive" and response.read()
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = read_until_close(sock)
        assert b"Connection: close" in data


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 5000 + b"\r\n\r\n", 431),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n", 413),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ],
)
def test_bad_input_is_refused_and_the_worker_keeps_serving(
    request_bytes: bytes, status: int
) -> None:
    with serving(echo.app, buffer_size=4096, limit_post=1000) as served:
        with connect(served.port) as sock:
            sock.sendall(request_bytes)
            data = read_until_close(sock)
        assert data.startswith(f"HTTP/1.1 {status} ".encode()), data[:80]
        assert get(served.port, "/")[0] == 200


def test_chunked_body_over_limit_post_gets_413() -> None:
    with serving(echo.app, limit_post=1000) as served, connect(served.port) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"400\r\n"
            + b"x" * 1024
            + b"\r\n0\r\n\r\n"
        )
        assert read_until_close(sock).startswith(b"HTTP/1.1 413 ")


def test_body_cut_short_is_never_complete() -> None:
    with serving(echo.app) as served, connect(served.port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf")
        sock.shutdown(socket.SHUT_WR)
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 400 "), data[:80]
        assert b"X-Body-Length" not in data


@pytest.mark.parametrize("path", ["/before", "/hop", "/crlf", "/status", "/twice", "/nostart"])
def test_app_errors_give_500_and_the_worker_keeps_serving(path: str) -> None:
    with serving(raising.app) as served:
        status, headers, _ = get(served.port, path)
        assert status == 500
        assert "Injected" not in headers
        assert get(served.port, "/fine")[0] == 200


def test_exc_info_replaces_the_response_before_the_head_is_sent() -> None:
    with serving(raising.app) as served:
        assert get(served.port, "/excinfo")[:1] == (503,)


def test_error_after_the_head_closes_the_connection() -> None:
    with serving(raising.app) as served, connect(served.port) as sock:
        sock.sendall(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 200 OK") and not data.endswith(b"0\r\n\r\n")
        assert get(served.port, "/close")[2] == b"closing"


def test_slow_head_is_cut_off_without_holding_the_only_worker() -> None:
    with serving(hello.app, header_timeout=1.0) as served, connect(served.port) as slowpoke:
        slowpoke.sendall(b"GET / HTTP/1.1\r\nHost: ")
        started = time.monotonic()
        assert get(served.port)[0] == 200  # the single worker is free meanwhile
        assert time.monotonic() - started < 0.5
        slowpoke.settimeout(5)
        assert read_until_close(slowpoke) == b""  # cut off, no response
        assert 0.9 < time.monotonic() - started < 4


def test_keep_alive_clients_do_not_starve_a_third() -> None:
    with serving(hello.app, keepalive_timeout=30.0) as served:
        holders = [
            http.client.HTTPConnection("127.0.0.1", served.port, timeout=5) for _ in range(2)
        ]
        try:
            for holder in holders:
                holder.request("GET", "/")
                holder.getresponse().read()
            for _ in range(20):
                started = time.monotonic()
                assert get(served.port)[0] == 200
                assert time.monotonic() - started < 1.0
            for holder in holders:  # and the holders are still served too
                holder.request("GET", "/")
                assert holder.getresponse().read() == b"Hello, world!\n"
        finally:
            for holder in holders:
                holder.close()


@pytest.mark.parametrize("threads", [1, 2])
def test_keep_alive_clients_that_never_pause_do_not_starve_a_third(threads: int) -> None:
    """As many clients as threads send each next request the moment the last is answered,
    so some thread always has a keep-alive request ready: a third client is still answered
    at once (no thread keeps serving one connection while another waits)."""
    with serving(hello.app, threads=threads, keepalive_timeout=30.0) as served:
        stop = threading.Event()
        answered = [0] * threads

        def hammer(number: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
            try:
                while not stop.is_set():
                    conn.request("GET", "/")
                    assert conn.getresponse().read() == b"Hello, world!\n"
                    answered[number] += 1
            finally:
                conn.close()

        hammers = [threading.Thread(target=hammer, args=(n,)) for n in range(threads)]
        for thread in hammers:
            thread.start()
        try:
            wait_until(lambda: min(answered) >= 50, 10, "the hammering clients to be served")
            before = list(answered)
            for _ in range(20):
                started = time.monotonic()
                assert get(served.port)[0] == 200
                assert time.monotonic() - started < 1.0
        finally:
            stop.set()
            for thread in hammers:
                thread.join(10)
        assert all(now > then for now, then in zip(answered, before, strict=True))  # them too


def test_idle_keep_alive_connection_is_closed_after_the_timeout() -> None:
    with serving(hello.app, keepalive_timeout=0.5) as served, connect(served.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        response = read_response(sock)
        assert response.read() == b"Hello, world!\n"
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert 0.3 < time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("settings", "requests"), [({"keepalive_timeout": 0.0}, 1), ({"keepalive_requests": 3}, 3)]
)
def test_keep_alive_limits(settings: dict[str, Any], requests: int) -> None:
    with serving(hello.app, **settings) as served, connect(served.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * 5)
        data = read_until_close(sock)
        assert data.count(b"HTTP/1.1 200 OK") == requests
        assert data.count(b"Connection: close") == 1


def test_file_wrapper_uses_sendfile_with_computed_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = os.urandom(300_000)
    path = tmp_path / "payload"
    path.write_bytes(payload)
    monkeypatch.setenv("SOCKACTD_TEST_FILE", str(path))
    with serving(file_wrapper.app) as served:
        status, headers, body = get(served.port, "/")
        assert status == 200 and body == payload and headers["Content-Length"] == str(len(payload))
        assert get(served.port, "/skip")[2] == payload[10:]
        assert get(served.port, "/pipe")[2] == b"not a real file " * 10
        assert get(served.port, "/", method="HEAD")[2] == b""


@pytest.mark.parametrize("app", [hello.app, echo.app, streaming.app, slow.app])
def test_wsgiref_validator_accepts_environ_and_responses(app: Any) -> None:
    with serving(validator(app)) as served:
        status, _, _ = get(served.port, "/?s=0", method="POST", body=b"data\nmore")
        assert status == 200
        assert get(served.port, "/?s=0", method="HEAD")[0] == 200


def test_sigterm_lets_the_request_in_flight_finish_with_connection_close(tmp_path: Path) -> None:
    mark = tmp_path / "started"
    with serving(slow.app) as served, connect(served.port) as sock:
        sock.sendall(f"GET /?s=1&mark={mark} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        wait_until(mark.exists, 5, "the slow request to start")
        assert served.stop() == [0]
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in data
        assert data.endswith(b"slow done")


def test_threads_serve_slow_requests_in_parallel() -> None:
    with serving(slow.app, threads=4) as served:
        socks = [socket.create_connection(("127.0.0.1", served.port), timeout=5) for _ in range(4)]
        try:
            started = time.monotonic()
            for sock in socks:
                sock.sendall(b"GET /?s=0.5 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            for sock in socks:
                assert read_until_close(sock).endswith(b"slow done")
            assert time.monotonic() - started < 1.6
        finally:
            for sock in socks:
                sock.close()
        assert served.stop() == [0]


def test_two_workers_share_the_listener() -> None:
    with serving(echo.app, workers=2) as served:
        pids = {get(served.port)[1]["X-Pid"] for _ in range(40)}
        assert pids <= {str(p) for p in served.pids} and pids


def test_uwsgi_listener_is_served() -> None:
    def block(pairs: dict[str, str]) -> bytes:
        out = b""
        for key, value in pairs.items():
            k, v = key.encode(), value.encode()
            out += len(k).to_bytes(2, "little") + k + len(v).to_bytes(2, "little") + v
        return out

    vars_ = block(
        {
            "REQUEST_METHOD": "POST",
            "REQUEST_URI": "/?how=read",
            "QUERY_STRING": "how=read",
            "PATH_INFO": "/",
            "CONTENT_LENGTH": "5",
            "SERVER_NAME": "x",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "1.2.3.4",
        }
    )
    packet = bytes([0]) + len(vars_).to_bytes(2, "little") + bytes([0]) + vars_
    with serving(echo.app, protocol="uwsgi") as served, connect(served.port) as sock:
        sock.sendall(packet + b"he")
        time.sleep(0.05)  # the body arrives in a second segment, as from a real front end
        sock.sendall(b"llo")
        data = read_until_close(sock)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"hello")
        assert b"Content-Length: 5" in data
        assert b"\r\nDate:" not in data  # the front end dates the response, as for uWSGI


def test_no_child_left(tmp_path: Path) -> None:
    with serving(hello.app) as served:
        pid = served.pids[0]
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    with closing(socket.socket()) as probe:
        assert probe.fileno() >= 0
