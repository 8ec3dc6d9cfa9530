"""A ready connection parked on a busy worker is served by an idle worker (issue 17, the lobby).

serve() in forked children sharing one listener and one lobby (worker/lobby.py), as a
generation forked by the master does, with real keep-alive clients. Each client is
parked on the worker that answered its first request (accepts spread over idle
workers); then one worker gets stuck in a request held by a gate file, and the clients
parked on it send their requests. They must be answered by the other workers while
that request is still running -- none lost, none reset -- and every race the hand-over
has (the sender dying, the generation draining, the peer leaving) must lose nothing.
Under overload the lobby must not become a place where connections starve: every
client of a closed-loop load above capacity is answered about as often as any other.
"""

from __future__ import annotations

import http.client
import os
import select
import selectors
import signal
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.integration.serve_child import Served, serving
from tests.support import wait_until

_CLIENTS = 30
_RESET = b"\x01\x00\x00\x00" * 2  # SO_LINGER on, 0 s: close() sends a reset


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers this worker's pid; ?mark=PATH is touched first, ?gate=PATH waited for (≤ 30 s)."""
    query = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if "mark" in query:
        Path(query["mark"]).touch()
    if "gate" in query:
        deadline = time.monotonic() + 30
        while not Path(query["gate"]).exists() and time.monotonic() < deadline:
            time.sleep(0.005)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


def _waiting(pids: list[int]) -> bool:
    """Every worker asleep in epoll_wait: idle, and back in the listener's wait queue."""
    return all(Path(f"/proc/{pid}/wchan").read_text() == "do_epoll_wait" for pid in pids)


def _send(sock: socket.socket, query: str = "") -> None:
    sock.sendall(f"GET /?{query} HTTP/1.1\r\nHost: t\r\n\r\n".encode())


def _answer(sock: socket.socket) -> tuple[int, int]:
    """(status, pid of the worker that answered)."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, int(response.read())


@contextmanager
def _parked(served: Served, count: int) -> Iterator[dict[int, list[socket.socket]]]:
    """`count` keep-alive clients, each answered once: {worker pid: its parked clients}."""
    with ExitStack() as stack:
        by_worker: dict[int, list[socket.socket]] = {pid: [] for pid in served.pids}
        for _ in range(count):
            wait_until(lambda: _waiting(served.pids), 10, "every worker idle")
            sock = stack.enter_context(
                socket.create_connection(("127.0.0.1", served.port), timeout=15)
            )
            _send(sock)
            status, pid = _answer(sock)
            assert status == 200
            by_worker[pid].append(sock)
        yield by_worker


def _server_ends(port: int, clients: list[socket.socket]) -> set[str]:
    """The server's ends of `clients`' connections, named as /proc/PID/fd links them."""
    peers = {sock.getsockname()[1] for sock in clients}
    ends = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, inode = (row.split()[i] for i in (1, 2, 9))
        if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) in peers:
            ends.add(f"socket:[{inode}]")
    return ends


def _held_by(pid: int, files: set[str]) -> set[str]:
    """Which of `files` process `pid` has open (fds it opens or closes meanwhile aside)."""
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with suppress(FileNotFoundError):
            held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return held & files


@pytest.mark.parametrize("threads", [1, 2])
def test_clients_parked_on_a_busy_worker_are_answered_by_idle_ones(
    tmp_path: Path, threads: int
) -> None:
    gate = tmp_path / "gate"
    served_by = serving(app, workers=3, processes=3, threads=threads)
    with served_by as served, _parked(served, _CLIENTS) as by_worker:
        busy_pid, clients = max(by_worker.items(), key=lambda item: len(item[1]))
        assert len(clients) > threads, by_worker  # some stay parked behind the slow ones
        slow, waiting = clients[:threads], clients[threads:]
        for n, sock in enumerate(slow):  # every handler thread of busy_pid held at the gate
            mark = tmp_path / f"started-{n}"
            _send(sock, f"mark={mark}&gate={gate}")
            wait_until(mark.exists, 10, "the slow request to start")
        for sock in waiting:
            _send(sock)
        answers = [_answer(sock) for sock in waiting]
        # every one answered while the slow requests still run, by another worker
        assert not select.select(slow, [], [], 0)[0]  # no slow answer has come yet
        assert all(status == 200 for status, _ in answers), answers
        assert busy_pid not in {pid for _, pid in answers}, answers
        gate.touch()
        assert [_answer(sock) for sock in slow] == [(200, busy_pid)] * threads
        # the handed-over clients stay served where they are now, keep-alive
        for sock in waiting:
            _send(sock)
        assert all(status == 200 for status, _ in (_answer(sock) for sock in waiting))


@contextmanager
def _stuck_in_the_lobby(
    tmp_path: Path, served: Served, by_worker: dict[int, list[socket.socket]]
) -> Iterator[tuple[int, list[socket.socket]]]:
    """Both workers held at a gate, the clients parked on the first one in the lobby.

    Yields (the worker that handed them over, those clients); the gate is open after.
    """
    gate = tmp_path / "gate"
    (sender, clients), (receiver, others) = sorted(by_worker.items(), key=lambda i: -len(i[1]))
    assert len(clients) >= 3 and others, by_worker
    for pid, sock in ((receiver, others[0]), (sender, clients[0])):
        mark = tmp_path / f"started-{pid}"
        _send(sock, f"mark={mark}&gate={gate}")
        wait_until(mark.exists, 10, f"worker {pid} to be held at the gate")
    # Not a count of the sender's fds: the app's mark (Path.touch) may still hold one
    handed = _server_ends(served.port, clients[1:])
    assert len(handed) == len(clients[1:]) and _held_by(sender, handed) == handed
    for sock in clients[1:]:
        _send(sock)
    # the sender closed its copy of each one it handed over; the receiver is held
    wait_until(lambda: not _held_by(sender, handed), 10, "the hand-overs")
    yield sender, clients[1:]
    gate.touch()


def test_connections_in_the_lobby_outlive_the_worker_that_sent_them(tmp_path: Path) -> None:
    with serving(app, workers=2, processes=2) as served, _parked(served, 12) as by_worker:
        with _stuck_in_the_lobby(tmp_path, served, by_worker) as (sender, in_lobby):
            os.kill(sender, signal.SIGKILL)
            os.waitpid(sender, 0)
            served.pids.remove(sender)
        (receiver,) = served.pids
        assert [_answer(sock) for sock in in_lobby] == [(200, receiver)] * len(in_lobby)


def test_a_draining_generation_serves_what_is_left_in_its_lobby(tmp_path: Path) -> None:
    """A reload retires every worker of the generation while connections wait in its lobby."""
    with serving(app, workers=2, processes=2) as served, _parked(served, 12) as by_worker:
        with _stuck_in_the_lobby(tmp_path, served, by_worker) as (_, in_lobby):
            for pid in served.pids:
                os.kill(pid, signal.SIGTERM)
        answers = [_answer(sock) for sock in in_lobby]
        assert all(status == 200 for status, _ in answers), answers
        assert set(served.stop()) == {0}


def test_a_client_that_leaves_while_in_the_lobby_costs_nothing(tmp_path: Path) -> None:
    with serving(app, workers=2, processes=2) as served, _parked(served, 12) as by_worker:
        with _stuck_in_the_lobby(tmp_path, served, by_worker) as (_, in_lobby):
            gone, staying = in_lobby[0], in_lobby[1:]
            gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            gone.close()  # a reset, with its request still unread in the lobby
        assert all(status == 200 for status, _ in (_answer(sock) for sock in staying))
        assert set(served.stop()) == {0}


def sleepy(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A view that waits 20 ms on its database, saying which worker answered in X-Pid."""
    time.sleep(0.02)
    start_response("200 OK", [("Content-Length", "3"), ("X-Pid", str(os.getpid()))])
    return [b"ok\n"]


class _Client:
    """One closed-loop client: sends its next request as soon as the last is answered."""

    def __init__(
        self,
        port: int,
        keepalive: bool,
        selector: selectors.BaseSelector,
        sock: socket.socket | None = None,
    ) -> None:
        self.port = port
        self.keepalive = keepalive
        self.selector = selector
        self.answered = 0
        self.buffer = b""
        self.sock = sock  # a keep-alive connection made before (None: one is made)
        if sock is not None:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, self)
        self.request = b"GET / HTTP/1.1\r\nHost: t\r\n" + (
            b"\r\n" if keepalive else b"Connection: close\r\n\r\n"
        )

    def send(self) -> None:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self.sock.setblocking(False)
            self.selector.register(self.sock, selectors.EVENT_READ, self)
        self.sock.send(self.request)  # a few bytes into an empty buffer: all of it

    def on_readable(self) -> None:
        """Read what came; on a whole response, count it and send the next request."""
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        assert chunk, f"the server closed a connection unanswered: {self.buffer!r}"
        self.buffer += chunk
        head, found, body = self.buffer.partition(b"\r\n\r\n")
        if not found or len(body) < 3:
            return
        assert head.startswith(b"HTTP/1.1 200 "), self.buffer
        self.answered += 1
        self.buffer = b""
        if not self.keepalive:
            self.selector.unregister(self.sock)
            self.sock.close()
            self.sock = None
        self.send()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def _closed_loop(
    port: int, clients: int, keepalive: bool, enough: int, socks: Iterable[socket.socket] = ()
) -> list[int]:
    """Run `clients` closed-loop clients (the first on `socks`, connections made before)
    until one has been answered `enough` times (at most 60 s); the answers each had by then."""
    with selectors.DefaultSelector() as selector:
        made = [_Client(port, keepalive, selector, sock) for sock in socks]
        load = made + [_Client(port, keepalive, selector) for _ in range(clients - len(made))]
        try:
            for client in load:
                client.send()
            deadline = time.monotonic() + 60
            while max(c.answered for c in load) < enough and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    key.data.on_readable()
        finally:
            for client in load:
                client.close()
        return [client.answered for client in load]


@pytest.mark.parametrize(
    ("threads", "clients", "keepalive"),
    [(4, 100, True), (4, 100, False), (1, 32, True)],
    ids=["4-threads-keep-alive", "4-threads-new-connection-per-request", "1-thread-keep-alive"],
)
def test_no_client_starves_under_overload(threads: int, clients: int, keepalive: bool) -> None:
    """2 workers x `threads` threads, a 20 ms app, more closed-loop clients than threads:
    by the time the luckiest client has been answered 12 times, every client has been
    answered at least 3 times (issue 17: requests per client max/min <= 2 is the target;
    4 leaves room for a loaded machine). Before the fix, with threads, the connections
    handed to the lobby waited there for seconds while a few dozen others cycled."""
    enough = 12
    with serving(sleepy, workers=2, processes=2, threads=threads, keepalive_timeout=30.0) as s:
        answered = _closed_loop(s.port, clients, keepalive, enough)
    assert max(answered) >= enough, f"too slow to judge within 60 s: {sorted(answered)}"
    starved = [n for n in answered if n < enough // 4]
    assert not starved, f"{len(starved)} of {clients} answered < 3 times: {sorted(answered)}"


def test_clients_parked_unevenly_are_answered_about_as_often() -> None:
    """12 keep-alive clients parked on one worker, 4 on the other, each worker 4 threads,
    a 20 ms app: demand above capacity. With the line served where each client happened
    to be accepted, the 12 would be answered a third as often as the 4 (issue 17: Django
    at 4 threads, p99 above uWSGI's, whose clients share one accept queue). What waits in
    a busy worker's line goes to the lobby, and the generation's next free thread takes
    it: requests per client max/min <= 2, the issue's fairness target."""
    heavy, light = 12, 4
    serves = serving(sleepy, workers=2, processes=2, threads=4, keepalive_timeout=30.0)
    with serves as served, ExitStack() as stack:
        parked: dict[int, list[socket.socket]] = {pid: [] for pid in served.pids}
        first, second = served.pids
        wanted = {first: heavy, second: light}
        deadline = time.monotonic() + 30
        while any(len(parked[pid]) < n for pid, n in wanted.items()):
            assert time.monotonic() < deadline, {pid: len(s) for pid, s in parked.items()}
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=15)
            _send(sock)
            response = http.client.HTTPResponse(sock)
            response.begin()
            assert (response.status, response.read()) == (200, b"ok\n")
            pid = int(response.getheader("X-Pid", "0"))
            if len(parked[pid]) < wanted[pid]:
                parked[pid].append(stack.enter_context(sock))
            else:
                sock.close()  # that worker has its share: this one is not parked
        socks = parked[first] + parked[second]
        answered = _closed_loop(served.port, len(socks), True, 40, socks)
    assert max(answered) >= 40, f"too slow to judge within 60 s: {answered}"
    by_where = f"on the first worker {answered[:heavy]}, on the second {answered[heavy:]}"
    assert max(answered) <= 2 * min(answered), by_where
