"""The monitoring server over real loopback sockets and the master's loop, in-process.

What a scraper, uwsgitop or a hostile client sees: answers, 404/405/400/431, the
raw stats dialect, and the bounds (head size, deadlines, connection count).
"""

from __future__ import annotations

import _socket
import socket
from collections.abc import Iterator, Mapping

import pytest

from sockactd.master import monitor
from sockactd.master.endpoints import MonitorSocket
from sockactd.master.loop import Loop
from sockactd.master.monitor import Answer, MonitorServer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def page(path: str, headers: Mapping[str, str]) -> Answer | None:
    if path in ("/metrics", ""):
        return Answer(200, "text/plain", f"ok {headers.get('accept', '-')}\n".encode())
    return None


class Harness:
    def __init__(self, http: bool) -> None:
        listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1100)
        listener.setblocking(False)
        self.address = listener.getsockname()
        self.loop = Loop()
        self.clock = Clock()
        endpoint = MonitorSocket("metrics" if http else "stats", listener, "test", http)
        self.server = MonitorServer(endpoint, page, self.loop, self.clock)

    def turn(self, timeout: float = 0.05) -> None:
        self.loop.run_once(timeout)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=5)
        return sock

    def exchange(self, data: bytes) -> bytes:
        sock = self.connect()
        sock.sendall(data)
        return self.read_all(sock)

    def read_all(self, sock: socket.socket) -> bytes:
        sock.setblocking(False)
        out = b""
        for _ in range(200):
            self.turn(0.01)
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        sock.close()
        return out

    def close(self) -> None:
        self.server.close()
        self.server.endpoint.sock.close()
        self.loop.close()


@pytest.fixture
def http() -> Iterator[Harness]:
    harness = Harness(http=True)
    yield harness
    harness.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n", b"200 OK"),
        (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", b"200 OK"),
        (b"GET /metrics HTTP/1.1\n\n", b"200 OK"),
        (b"GET / HTTP/1.1\r\n\r\n", b"404 Not Found"),
        (b"GET /metricsx HTTP/1.1\r\n\r\n", b"404 Not Found"),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", b"405 Method Not Allowed"),
        (b"DELETE /metrics HTTP/1.1\r\n\r\n", b"405 Method Not Allowed"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400 Bad Request"),
        (b"GET /metrics\r\n\r\n", b"400 Bad Request"),
        (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", b"400 Bad Request"),
        (b"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n", b"400 Bad Request"),
    ],
)
def test_answers(http: Harness, request_bytes: bytes, status: bytes) -> None:
    reply = http.exchange(request_bytes)
    assert reply.startswith(b"HTTP/1.1 " + status), reply
    assert b"Connection: close\r\n" in reply
    head, _, body = reply.partition(b"\r\n\r\n")
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert len(body) == length
    if status == b"405 Method Not Allowed":
        assert b"Allow: GET, HEAD\r\n" in head


def test_head_has_the_length_and_no_body(http: Harness) -> None:
    reply = http.exchange(b"HEAD /metrics HTTP/1.1\r\nAccept: a/b\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Content-Length: 7\r\n" in head  # len(b"ok a/b\n")
    assert body == b""


@pytest.mark.parametrize("cut", range(1, len(b"GET /metrics HTTP/1.1\r\n\r\n")))
def test_a_request_in_two_pieces_is_answered_wherever_tcp_cuts_it(http: Harness, cut: int) -> None:
    data = b"GET /metrics HTTP/1.1\r\n\r\n"
    sock = http.connect()
    sock.sendall(data[:cut])
    http.turn()
    sock.sendall(data[cut:])
    assert http.read_all(sock).startswith(b"HTTP/1.1 200 OK")


def test_a_head_over_the_limit_gets_431(http: Harness) -> None:
    reply = http.exchange(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * monitor.MAX_HEAD)
    assert reply.startswith(b"HTTP/1.1 431")


def test_a_half_request_is_dropped_at_its_deadline(http: Harness) -> None:
    sock = http.connect()
    sock.sendall(b"GET /metr")
    http.turn()
    assert http.server.connections() == 1
    http.clock.now += monitor.READ_TIMEOUT - 0.1
    http.server.expire(http.clock.now)
    assert http.server.connections() == 1
    http.clock.now += 0.2
    http.server.expire(http.clock.now)
    assert http.server.connections() == 0
    sock.close()


def test_past_the_connection_limit_the_longest_silent_one_is_evicted(http: Harness) -> None:
    idle = []
    for _ in range(monitor.MAX_CONNECTIONS):
        idle.append(http.connect())
        http.turn()
        http.clock.now += 0.01
    assert http.server.connections() == monitor.MAX_CONNECTIONS
    reply = http.exchange(b"GET /metrics HTTP/1.1\r\n\r\n")  # a real scrape still gets through
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert http.server.connections() <= monitor.MAX_CONNECTIONS
    idle[0].setblocking(False)
    assert idle[0].recv(10) == b""  # the oldest idle connection was closed
    for sock in idle:
        sock.close()


def test_a_thousand_connections_never_hold_more_than_the_limit(http: Harness) -> None:
    clients = []
    for _ in range(1000):
        clients.append(socket.create_connection(http.address, timeout=5))
        if len(clients) % 50 == 0:
            http.turn(0)
    for _ in range(100):
        http.turn(0)
    assert http.server.connections() <= monitor.MAX_CONNECTIONS
    for sock in clients:
        sock.close()
    assert http.exchange(b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200 OK")


def test_raw_stats_are_written_on_connect_whatever_the_client_sends() -> None:
    raw = Harness(http=False)
    try:
        assert raw.read_all(raw.connect()) == b"ok -\n"
        assert raw.exchange(b"\x00garbage\r\n\r\nGET / HTTP/1.1\r\n\r\n") == b"ok -\n"
        assert raw.server.connections() == 0
    finally:
        raw.close()


def test_a_page_is_rendered_once_per_interval_whatever_the_number_of_clients(
    http: Harness,
) -> None:
    renders: list[str] = []
    real = http.server._page

    def counting(path: str, headers: Mapping[str, str]) -> Answer | None:
        renders.append(path)
        return real(path, headers)

    http.server._page = counting
    for _ in range(5):
        assert http.exchange(b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert renders == ["/metrics"]
    http.clock.now += monitor.RENDER_EVERY * 1.5
    assert http.exchange(b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert renders == ["/metrics", "/metrics"]
