"""A flood of idle connections beyond the fd limit costs the flood, not the site (issue 12 item 2).

The server runs with `ulimit -n 256` (soft and hard, so it cannot raise it) and 1,000
idle connections arrive: the workers must not crash, must not spin on the listener,
must say so in a bounded number of lines, and must serve a fresh client once the
flood has gone. And a worker's parked connections are capped (worker-connections),
the oldest idle one closed first.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.apps import hello, slow
from tests.integration.serve_child import serving
from tests.integration.server import Server, http_get
from tests.support import free_port, wait_until

APP = "tests.apps.hello:app"
FLOOD = 1000
LIMIT = 256


@pytest.fixture
def many_fds() -> Iterator[None]:
    """This test process holds the flood's 1,000 client sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * FLOOD)), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def served(port: int) -> bool:
    try:
        return http_get(port, "/", timeout=2)[0] == 200
    except OSError:
        return False


@pytest.mark.parametrize("threads", [1, 2])
def test_a_flood_past_the_fd_limit_neither_crashes_nor_spins(
    tmp_path: Path, many_fds: None, threads: int
) -> None:
    port = free_port()
    srv = Server(tmp_path, ["--http-socket", f"127.0.0.1:{port}", "--header-timeout", "60",
                            "--threads", str(threads), APP])  # fmt: skip
    srv.fd_limit = (LIMIT, LIMIT)
    srv.start()
    flood: list[socket.socket] = []
    try:
        workers = srv.worker_pids()
        log_size = len(srv.log())
        for _ in range(FLOOD):
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        wait_until(lambda: "accept" in srv.log()[log_size:], 10, "the workers to run out of fds")
        assert srv.worker_pids() == workers, srv.log()[-2000:]  # nobody crashed
        before = {pid: cpu_seconds(pid) for pid in workers}
        started = time.monotonic()
        time.sleep(2.0)  # a window to measure CPU over: the flood stays idle meanwhile
        window = time.monotonic() - started
        usage = {pid: (cpu_seconds(pid) - before[pid]) / window for pid in workers}
        assert srv.worker_pids() == workers, srv.log()[-2000:]  # nobody crashed
        assert all(share < 0.10 for share in usage.values()), usage
        said = srv.log()[log_size:]
        assert said.count("\n") <= 10, said[-3000:]
        assert "Traceback" not in said
        for sock in flood:
            sock.close()
        flood.clear()
        wait_until(lambda: served(port), 5, "a fresh client to be served")
        assert srv.worker_pids() == workers
    finally:
        for sock in flood:
            sock.close()
        srv.stop()


@pytest.mark.parametrize("threads", [1, 2])
def test_a_client_it_holds_keeps_being_served_past_the_fd_limit(
    tmp_path: Path, many_fds: None, threads: int
) -> None:
    """The flood costs the flood: an active keep-alive client keeps its connection and answers.

    One worker, so the client and the flood share it. The flood sends nothing, so the
    kernel hands it to the worker a second late (TCP_DEFER_ACCEPT) and all at once, while
    the client waits for the worker to say it ran out of fds: every flood connection has
    then been parked for less time than the client's connection, which has been answered
    though. The client keeps asking while the worker makes room, three times, by closing
    flood connections: every answer comes, on the connection it had from the start.
    """
    port = free_port()
    srv = Server(tmp_path, ["--http-socket", f"127.0.0.1:{port}", "--header-timeout", "60",
                            "--processes", "1", "--threads", str(threads), APP])  # fmt: skip
    srv.fd_limit = (LIMIT, LIMIT)
    srv.start()
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    flood: list[socket.socket] = []
    try:
        log_size = len(srv.log())
        assert _answer_on(client) == 200
        while len(flood) < FLOOD:
            flood += [socket.create_connection(("127.0.0.1", port), 10) for _ in range(50)]
            assert _answer_on(client) == 200
        wait_until(lambda: "accept" in srv.log()[log_size:], 10, "the worker to run out of fds")
        closed = select.poll()  # a flood connection the worker closed reads as end of stream
        for sock in flood:
            closed.register(sock, select.POLLIN)

        def answered_while_room_was_made() -> bool:
            assert _answer_on(client) == 200
            return len(closed.poll(0)) >= 3

        wait_until(answered_while_room_was_made, 30, "the worker to close three of the flood")
    finally:
        client.close()
        for sock in flood:
            sock.close()
        srv.stop()


def _answer_on(sock: socket.socket) -> int:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    return _answer(sock)[0]


def test_the_oldest_idle_connection_makes_room_at_the_cap() -> None:
    with serving(hello.app, worker_connections=3) as served_:
        port = served_.port
        conns = []
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\n")  # a head that has not ended: parked
            conns.append(sock)
        try:
            # The first two were parked longest: they go, with no answer.
            for sock in conns[:2]:
                assert sock.recv(100) == b""
            for sock in conns[2:]:
                sock.sendall(b"Host: x\r\n\r\n")
                assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
        finally:
            for sock in conns:
                with contextlib.suppress(OSError):
                    sock.close()


def test_at_the_cap_clients_in_use_keep_their_connections_and_the_new_one_waits() -> None:
    """At worker-connections with every parked connection answered and in use, none goes.

    Closing A, parked longest, would race its client's next request. C waits in the
    accept queue instead while A and B are served, and is answered once A has left.
    """
    with serving(hello.app, worker_connections=2, keepalive_timeout=60) as served_:
        port = served_.port
        with contextlib.ExitStack() as stack:

            def connect() -> socket.socket:
                return stack.enter_context(socket.create_connection(("127.0.0.1", port), 10))

            a, b = connect(), connect()
            assert _answer_on(a) == 200
            assert _answer_on(b) == 200
            c = connect()
            c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            for _ in range(3):
                assert _answer_on(a) == 200
                assert _answer_on(b) == 200
            assert select.select([c], [], [], 0)[0] == []  # not answered: not accepted yet
            a.close()
            assert _answer(c) == (200, b"Hello, world!\n")
            assert _answer_on(b) == 200


def soft_fd_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError(f"no fd limit for {pid}")


def test_the_server_raises_its_soft_fd_limit_to_the_hard_one(tmp_path: Path) -> None:
    port = free_port()
    srv = Server(tmp_path, ["--http-socket", f"127.0.0.1:{port}", "--processes", "1", APP])
    srv.fd_limit = (LIMIT, 4 * LIMIT)
    srv.start()
    try:
        assert http_get(port)[0] == 200  # the first workers raise theirs after a first wake-up
        wait_until(lambda: soft_fd_limit(srv.worker_pids()[0]) == 4 * LIMIT, 5, "worker limit")
        assert soft_fd_limit(srv.pid) == 4 * LIMIT
        assert f"raised the open-file limit from {LIMIT} to {4 * LIMIT}" in srv.log()
    finally:
        srv.stop()


def test_a_request_on_the_oldest_connection_is_answered_when_a_new_one_needs_room(
    tmp_path: Path,
) -> None:
    """Making room at the cap closes an idle connection, never one whose request has arrived.

    A is parked longest; while a slow request holds the worker, C connects and then A
    sends its next request. The worker sees C's accept first, at the cap: closing A
    would reset a request it owes an answer.
    """
    mark = tmp_path / "slow-started"
    with serving(slow.app, worker_connections=2) as served_:
        port = served_.port
        with contextlib.ExitStack() as stack:

            def connect() -> socket.socket:
                return stack.enter_context(socket.create_connection(("127.0.0.1", port), 10))

            a = connect()
            a.sendall(b"GET /?s=0 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert _answer(a) == (200, b"slow done")
            b = connect()
            b.sendall(f"GET /?s=1&mark={mark} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            wait_until(mark.exists, 10, "the slow request to start")
            c = connect()  # waits in the accept queue: the worker is busy
            c.sendall(b"GET /?s=0 HTTP/1.1\r\nHost: t\r\n")  # a head not ended yet: parks
            a.sendall(b"GET /?s=0 HTTP/1.1\r\nHost: t\r\n\r\n")
            assert _answer(b) == (200, b"slow done")
            assert _answer(a) == (200, b"slow done")


def _answer(sock: socket.socket) -> tuple[int, bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read()
