"""How a worker stops: once, and without leaving a connection it was told of unanswered.

serve() in forked children on a real listening socket (tests/integration/serve_child.py)
or a real master, real clients on loopback. The listener is polled EPOLLEXCLUSIVE: a new
connection puts it on the ready list of every worker not waiting in epoll_wait and wakes
the first one that is. With both workers of one thread in a request, a connection is
announced to both and waits in the accept queue; when one of them then stops and
declines it, it waits for the other one's request, however long that runs (and where
the kernel woke only the stopping worker, for the next connection to wake another one).

With threads the loop thread accepts whatever comes, however busy the handler threads
are: a connection waits in the accept queue only when it comes in the window between a
SIGTERM and the loop seeing it. The threaded test opens that window wide with SIGSTOP.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
from pathlib import Path

import pytest

from tests.apps import gated
from tests.integration.serve_child import serving
from tests.integration.server import running
from tests.support import free_port, wait_until
from tests.unit.protocols.test_uwsgi import packet

_LIBC = ctypes.CDLL(None, use_errno=True)


def _request(protocol: str, query: str, close: str = "") -> bytes:
    if protocol == "http":
        return f"GET /?{query} HTTP/1.1\r\nHost: t\r\n{close}\r\n".encode()
    pairs = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/"), ("QUERY_STRING", query),
             ("SERVER_PROTOCOL", "HTTP/1.1"), ("SERVER_NAME", "t"), ("SERVER_PORT", "80"),
             ("REMOTE_ADDR", "127.0.0.1")]  # fmt: skip
    return packet(pairs)


def _head_and_body(sock: socket.socket) -> tuple[bytes, bytes]:
    """The whole answer of a connection the worker closes after it (a stopping worker does)."""
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize("protocol", ["http", "uwsgi"])
def test_a_connection_waiting_when_a_worker_stops_is_answered_by_it(
    tmp_path: Path, protocol: str
) -> None:
    log = tmp_path / "log"

    def started(name: str) -> int:
        mark = Path(f"{log}.{name}")
        wait_until(lambda: mark.exists() and mark.read_text(), 10, f"request {name} to start")
        return int(mark.read_text())

    def held(name: str) -> str:
        return f"id={name}&log={log}&gate={tmp_path / ('open-' + name)}"

    with (
        serving(gated.app, workers=2, protocol=protocol) as served,
        socket.create_connection(("127.0.0.1", served.port), timeout=30) as a,
    ):
        a.sendall(_request(protocol, held("a")))
        stopping = started("a")
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as b:
            # the idle worker takes it (it closes after answering, as the stopping one does)
            b.sendall(_request(protocol, held("b"), close="Connection: close\r\n"))
            assert {stopping, started("b")} == set(served.pids)
            with socket.create_connection(("127.0.0.1", served.port), timeout=30) as c:
                c.sendall(_request(protocol, f"id=c&log={log}"))
                os.kill(stopping, signal.SIGTERM)
                (tmp_path / "open-a").touch()
                assert _head_and_body(a)[1] == b"a"
                c.settimeout(5)  # b's request holds the other worker for 30 s
                head, body = _head_and_body(c)
            assert head.startswith(b"HTTP/1.1 200 ") and body == b"c", (head, body)
            if protocol == "http":
                assert b"\r\nConnection: close" in head, head
            assert started("c") == stopping
            (tmp_path / "open-b").touch()
            assert _head_and_body(b)[1] == b"b"


def test_a_worker_stopped_during_a_request_stops_once(tmp_path: Path) -> None:
    """One SIGTERM, one stop: one line in the log, one DRAINING frame to the master.

    The SIGTERM comes while the worker is in the app, with a keep-alive client parked on
    it, so the worker sees it twice: its handler marks the worker closing (what the loop
    acts on after the request), and the wake-up pipe is still readable at the next poll.
    """
    log = tmp_path / "log"
    port = free_port()
    with running(tmp_path, "--http-socket", f"127.0.0.1:{port}", "--processes", "1",
                 "tests.apps.gated:app") as srv:  # fmt: skip
        (worker,) = srv.worker_pids()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as parked,
            socket.create_connection(("127.0.0.1", port), timeout=30) as busy,
        ):
            parked.sendall(_request("http", "id=p"))
            assert parked.recv(65536).startswith(b"HTTP/1.1 200 ")  # then idle, kept alive
            busy.sendall(_request("http", f"id=b&log={log}&gate={tmp_path / 'open'}"))
            wait_until(Path(f"{log}.b").exists, 10, "the request to start")
            srv.signal(signal.SIGTERM)  # the master's graceful stop: SIGTERM to the worker
            wait_until(lambda: srv.log().count("stop: SIGTERM"), 10, "the master to stop")
            (tmp_path / "open").touch()
            head, body = _head_and_body(busy)
            assert head.startswith(b"HTTP/1.1 200 ") and body == b"b", (head, body)
            assert parked.recv(65536) == b""  # closed after the stop's grace, unanswered: idle
        assert srv.wait(30) == 0
        said = srv.log()
        assert said.count(f"worker {worker} stopping (SIGTERM)") == 1, said


def _stopped(pid: int) -> bool:
    """True when every thread of `pid` is stopped (SIGSTOP), as /proc says."""
    states = []
    for task in os.listdir(f"/proc/{pid}/task"):
        stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
        states.append(stat.rsplit(")", 1)[1].split()[0])
    return set(states) == {"T"}


def _accept_queue(port: int) -> int:
    """How many connections wait in the accept queue of the listener on 127.0.0.1:`port`.

    /proc/net/tcp gives a listening socket's accept backlog as its rx_queue.
    """
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state, queues = (row.split()[i] for i in (1, 3, 4))
        if state == "0A" and int(local.split(":")[1], 16) == port:
            return int(queues.split(":")[1], 16)
    raise AssertionError(f"nothing listens on port {port}")


def _sigterm_to_main_thread(pid: int) -> None:
    """SIGTERM for `pid`'s main thread (the worker's loop), as tgkill(2) sends it.

    A running process gets a kill(2)'s signal on its main thread when that thread does
    not block it; a stopped one leaves it to whichever thread runs first after SIGCONT,
    and a handler thread taking it would let the loop poll once more before it knows.
    """
    if _LIBC.tgkill(pid, pid, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


@pytest.mark.parametrize("protocol", ["http", "uwsgi"])
def test_a_threaded_worker_that_stops_answers_as_many_waiting_connections_as_it_has_threads(
    tmp_path: Path, protocol: str
) -> None:
    """--threads 2: a worker stopped by SIGTERM takes two of the connections that wait,
    answers them (`Connection: close`) and leaves the rest to the workers that stay.

    Both workers are stopped (SIGSTOP) while four connections come, so all four wait in
    the accept queue; the one told to stop then runs on its own: the other one is still
    stopped while it must answer.
    """
    threads, log, port = 2, tmp_path / "log", free_port()
    flag = "--http-socket" if protocol == "http" else "--socket"
    with running(tmp_path, flag, f"127.0.0.1:{port}", "--processes", "2", "--threads",
                 str(threads), "tests.apps.gated:app") as srv:  # fmt: skip
        stopping, staying = srv.worker_pids()
        for pid in (stopping, staying):
            os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: _stopped(stopping) and _stopped(staying), 10, "both stopped")
        names = [f"c{n}" for n in range(threads + 2)]
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in names]
        try:
            for n, (name, client) in enumerate(zip(names, clients, strict=True)):
                # keep-alive for the ones it takes: it closes them because it stops
                close = "Connection: close\r\n" if n >= threads else ""
                client.sendall(_request(protocol, f"id={name}&log={log}", close))
            wait_until(lambda: _accept_queue(port) == len(clients), 10, "all four to wait")
            _sigterm_to_main_thread(stopping)
            os.kill(stopping, signal.SIGCONT)
            for name, client in zip(names[:threads], clients[:threads], strict=True):
                head, body = _head_and_body(client)  # the first ones queued: it takes those
                assert head.startswith(b"HTTP/1.1 200 ") and body == name.encode(), (head, body)
                if protocol == "http":
                    assert b"\r\nConnection: close" in head, head
            wait_until(lambda: stopping not in srv.worker_pids(), 10, f"worker {stopping} to exit")
            os.kill(staying, signal.SIGCONT)
            for name, client in zip(names[threads:], clients[threads:], strict=True):
                head, body = _head_and_body(client)
                assert head.startswith(b"HTTP/1.1 200 ") and body == name.encode(), (head, body)
        finally:
            for client in clients:
                client.close()
            os.kill(staying, signal.SIGCONT)  # however the test ended: the stop needs it
        served_by = {name: int(Path(f"{log}.{name}").read_text()) for name in names}
        assert [served_by[name] == stopping for name in names] == [True] * threads + [False] * 2
        assert f"worker {stopping} stopping (SIGTERM)" in srv.log()
