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

from tests.apps import slow
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
