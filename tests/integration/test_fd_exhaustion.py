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
