"""A request body trickled in holds a worker for body-timeout at most (issue 12 item 6).

Two clients announce a body and send it a byte at a time, as slowly as socket-timeout
per read allows, against two workers. Past body-timeout each gets 408 and its
connection is closed, and a client that was waiting meanwhile is served at once.
A steady upload that keeps to body-min-rate is not cut, however long it takes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from tests.apps import echo
from tests.integration.serve_child import serving
from tests.support import wait_until
from tests.unit.protocols.test_uwsgi import packet

BOUND = 1.0  # body-timeout in these tests
HEAD = b"POST /?how=read HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"


def read_all(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


class Trickler(threading.Thread):
    """Sends HEAD, then one body byte every `every` s until answered; notes when answered."""

    def __init__(self, port: int, every: float = 0.3) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.every = every
        self.answer = b""
        self.answered_at = 0.0
        self.sock.sendall(HEAD % 1000)

    def run(self) -> None:
        stop = time.monotonic() + 20  # bounded: the old code never answered
        self.sock.settimeout(self.every)
        while time.monotonic() < stop:
            try:
                self.answer = read_all(self.sock)
                self.answered_at = time.monotonic()
                return
            except TimeoutError:
                pass
            try:
                self.sock.sendall(b"x")
            except OSError:
                self.answered_at = time.monotonic()
                return


def timed(call: Callable[[], bytes]) -> tuple[bytes, float]:
    result = call()
    return result, time.monotonic()


def test_trickled_bodies_get_408_and_free_their_workers() -> None:
    with serving(echo.app, workers=2, body_timeout=BOUND, body_min_rate=500) as served:
        started = time.monotonic()
        tricklers = [Trickler(served.port), Trickler(served.port)]
        for trickler in tricklers:
            trickler.start()
        # Both workers now wait for a body (each is in a request); this client waits for one.
        wait_until(lambda: all(b.read()[2] for b in served.boards), 10, "both workers busy")
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as other:
            other.sendall(HEAD % 2 + b"ok")
            response, served_at = timed(lambda: other.recv(65536))
        for trickler in tricklers:
            trickler.join(30)
            trickler.sock.close()
        for trickler in tricklers:
            assert trickler.answer.startswith(b"HTTP/1.1 408 "), trickler.answer
            assert trickler.answered_at - started >= BOUND
        assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(b"ok"), response
        freed = min(trickler.answered_at for trickler in tricklers)
        # served at once when the first trickler's worker is freed (not socket-timeout later)
        assert served_at - freed < 0.1, (served_at - freed, served_at - started)
        served.stop()


def test_a_steady_slow_upload_is_not_cut() -> None:
    rate = 500
    size = 3 * rate  # 1.5 s at twice the minimum rate: longer than body-timeout
    with serving(echo.app, body_timeout=BOUND, body_min_rate=rate) as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
            sock.sendall(HEAD % size)
            for _ in range(size // 100):
                sock.sendall(b"y" * 100)
                time.sleep(100 / (2 * rate))  # twice the minimum rate
            response = sock.recv(65536)
        assert response.startswith(b"HTTP/1.1 200 "), response


def test_a_trickled_uwsgi_body_gets_408_after_the_bound() -> None:
    pairs = [("REQUEST_METHOD", "POST"), ("PATH_INFO", "/"), ("QUERY_STRING", "how=read"),
             ("CONTENT_LENGTH", "100"), ("SERVER_PROTOCOL", "HTTP/1.1"),
             ("SERVER_NAME", "x"), ("SERVER_PORT", "80"), ("REMOTE_ADDR", "127.0.0.1")]  # fmt: skip
    with serving(echo.app, protocol="uwsgi", body_timeout=BOUND, body_min_rate=0) as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
            sock.sendall(packet(pairs) + b"x")  # 1 of 100 bytes, then nothing
            started = time.monotonic()
            answer = read_all(sock)
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert waited < 5 * BOUND  # not socket-timeout (30 s)
