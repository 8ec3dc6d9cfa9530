"""A parked connection whose request has arrived is owed an answer, however busy the worker.

serve() in a forked child on 127.0.0.1 with real sockets: one worker, several
connections parked on it, one slow request that keeps the worker busy past the
keep-alive (or header) timeout, and the parked clients sending their requests
during it. Every one of them must be answered, none reset.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.apps import gated, slow
from tests.integration.serve_child import serving
from tests.support import wait_until

_PARKED = 6
_REQUEST = b"GET /?s=0 HTTP/1.1\r\nHost: t\r\n\r\n"


@contextmanager
def _clients(port: int, count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        socks = [
            stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=15))
            for _ in range(count)
        ]
        yield socks


def _answer(sock: socket.socket) -> tuple[int, bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read()


@pytest.mark.parametrize(
    ("parked_as", "settings"),
    [
        # idle after a first request: the keep-alive timeout runs out while the worker is busy
        ("keep-alive", {"keepalive_timeout": 0.5}),
        # accepted, nothing sent yet: the header timeout runs out while the worker is busy
        ("fresh", {"header_timeout": 0.5}),
    ],
)
def test_requests_sent_while_the_worker_was_busy_are_all_answered(
    tmp_path: Path, parked_as: str, settings: dict[str, float]
) -> None:
    mark = tmp_path / "slow-started"
    with serving(slow.app, **settings) as served, _clients(served.port, _PARKED) as parked:
        if parked_as == "keep-alive":
            for sock in parked:
                sock.sendall(_REQUEST)
                assert _answer(sock) == (200, b"slow done")
        with socket.create_connection(("127.0.0.1", served.port), timeout=15) as busy:
            # accepted after the parked ones (the accept queue is FIFO), so they are parked
            # in the worker's epoll when the slow request starts
            busy.sendall(f"GET /?s=2&mark={mark} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            wait_until(mark.exists, 10, "the slow request to start")
            for sock in parked:
                sock.sendall(_REQUEST)
            assert _answer(busy) == (200, b"slow done")
            answers = [_answer(sock) for sock in parked]
        assert answers == [(200, b"slow done")] * _PARKED


def test_requests_are_served_in_the_order_they_arrived(tmp_path: Path) -> None:
    """First ready, first served -- also for a request that arrived while a batch was served.

    Y and Z are ready together; X's request arrives while Y is served; Y's next one
    arrives (as a keep-alive client's does, right after its answer) while Z is served.
    X came before Y's second request, so X goes first. A worker that serves each poll's
    batch whole and polls again would find Y (ready in its last batch) ahead of X, and
    a client answered last in a batch would keep missing the next one.
    """
    log = tmp_path / "order"

    def request(sock: socket.socket, name: str, gate: str = "") -> None:
        query = f"id={name}&log={log}" + (f"&gate={tmp_path / gate}" if gate else "")
        sock.sendall(f"GET /?{query} HTTP/1.1\r\nHost: t\r\n\r\n".encode())

    def started(name: str) -> None:
        wait_until(Path(f"{log}.{name}").exists, 10, f"request {name} to start")

    with serving(gated.app) as served, _clients(served.port, 4) as (s, y, z, x):
        for sock in (y, z, x):  # accepted and parked, idle, before the worker gets busy
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert _answer(sock) == (200, b"")
        request(s, "s1", gate="open-s")
        started("s1")
        request(y, "y1", gate="open-y")
        request(z, "z1", gate="open-z")
        (tmp_path / "open-s").touch()
        started("y1")
        request(x, "x1")
        (tmp_path / "open-y").touch()
        assert _answer(y) == (200, b"y1")
        started("z1")
        request(y, "y2")
        (tmp_path / "open-z").touch()
        answers = [_answer(sock) for sock in (s, z, x, y)]
        assert answers == [(200, b"s1"), (200, b"z1"), (200, b"x1"), (200, b"y2")]
        assert log.read_text().split() == ["s1", "y1", "z1", "x1", "y2"]
