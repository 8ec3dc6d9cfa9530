"""The lobby's pieces, one step at a time: worker/lobby.py, watcher.py, threads.py, serve.py.

Two serve.py `_Server`s in this process stand for two workers of one generation: they
share a listener and a lobby (real sockets on 127.0.0.1, no fork), and the test moves
each of them one loop step at a time -- so the order of two events that land in one
tick is the test's to choose, not the scheduler's.
"""

from __future__ import annotations

import _thread
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from sockactd.config.model import Config
from sockactd.sockets import Listener
from sockactd.worker.board import Board
from sockactd.worker.connection import Context
from sockactd.worker.http_handler import HttpHandler
from sockactd.worker.lobby import Lobby
from sockactd.worker.serve import Links, _Server
from sockactd.worker.threads import HandlerThreads
from sockactd.worker.uwsgi_handler import UwsgiHandler
from sockactd.worker.watcher import Watcher
from tests.integration.serve_child import listening_socket
from tests.unit.worker.wire import ScriptedChannel


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@contextmanager
def _two_workers(threads: int = 1) -> Iterator[tuple[_Server, _Server, socket.socket]]:
    """Two _Servers sharing a listener and a lobby, plus a client parked on the first."""
    with ExitStack() as stack:
        sock = stack.enter_context(listening_socket())
        lobby = Lobby.create()
        stack.callback(lobby.close)
        listeners = [Listener(sock, "http", str(sock.getsockname()), inherited=False)]
        config = Config().replace(processes=2, threads=threads)
        servers = []
        for _ in range(2):
            board = Board.create()
            stack.callback(board.close)
            read_fd, write_fd = os.pipe()
            stack.callback(os.close, read_fd)
            stack.callback(os.close, write_fd)
            server = _Server(listeners, Context(hello, config, board), Links(read_fd, lobby=lobby))
            stack.callback(server.close)
            servers.append(server)
        client = stack.enter_context(socket.create_connection(sock.getsockname(), timeout=5))
        first, second = servers
        first._accept(first.ports[sock.fileno()])  # nothing sent yet: parked on `first`
        assert len(first.conns) == 1
        yield first, second, client


def _poll_once(server: _Server) -> None:
    """The part of one loop turn that matters here: what became readable joins the FIFO."""
    for fd, _ in server.epoll.poll(0):
        handler = server.conns.get(fd)
        if handler is not None:
            server._ready(handler)


def _received(client: socket.socket) -> bytes:
    client.settimeout(0.2)
    data = b""
    try:
        while chunk := client.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    return data


def test_a_connection_handed_over_as_its_worker_frees_up_is_served_once() -> None:
    """The request is in the worker's FIFO when the watcher hands it over; then the
    worker's turn ends and it serves its FIFO: the connection is gone from it."""
    with _two_workers() as (first, second, client):
        client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        _poll_once(first)
        assert len(first.ready) == 1
        first._hand_over_ready()  # the watcher, while `first` is in another request
        first._serve_ready()  # that request ends: `first` looks at its FIFO
        assert (first.conns, list(first.ready), first.queued) == ({}, [], set())
        assert second._adopt()
        assert _received(client).count(b"HTTP/1.1 200 OK") == 1
        assert len(second.conns) == 1  # kept alive, now parked on `second`


def test_what_the_worker_read_itself_is_not_handed_over() -> None:
    """Half a head read by the worker: its parser holds bytes the kernel no longer has."""
    with _two_workers() as (first, second, client):
        client.sendall(b"GET / HTTP/1.1\r\n")
        _poll_once(first)
        first._serve_ready()  # reads the half head, parks the connection again
        client.sendall(b"Host: t\r\n\r\n")
        first._hand_over_ready()
        assert len(first.conns) == 1 and not second._adopt()
        _poll_once(first)
        first._serve_ready()
        assert _received(client).count(b"HTTP/1.1 200 OK") == 1


def test_a_stopping_worker_hands_nothing_over_but_still_takes_from_the_lobby() -> None:
    with _two_workers() as (first, second, client):
        client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        first._hand_over_ready()
        second._begin_stop("SIGTERM")  # the stop and the lobby message in one tick
        assert second._adopt()
        assert b"Connection: close" in _received(client)
        assert first.conns == {} and not first._adopt()  # handed once, taken once


def test_a_peer_that_reset_in_transit_is_closed_by_the_taker() -> None:
    with _two_workers() as (first, second, client):
        client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        first._hand_over_ready()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
        client.close()
        assert second._adopt()  # the request is read and answered into the reset...
        _poll_once(second)
        second._serve_ready()
        assert second.conns == {}  # ...and the next turn finds the end of the connection


def test_a_full_lobby_keeps_the_connection_where_it_is() -> None:
    lobby = Lobby.create()
    try:
        a, b = socket.socketpair()
        with a, b:
            sent = 0
            while lobby.send_nowait(a.fileno(), 0):
                sent += 1
                assert sent < 100_000
            assert sent > 0
            taken = lobby.receive_nowait()
            assert taken is not None
            os.close(taken[0])
            assert lobby.send_nowait(a.fileno(), 0)  # room again
    finally:
        lobby.close()


def test_the_fd_taken_from_the_lobby_is_the_same_connection() -> None:
    lobby = Lobby.create()
    a, b = socket.socketpair()
    try:
        assert lobby.send_nowait(a.fileno(), 3)
        a.close()  # the sender's copy: the connection lives on in the message
        taken = lobby.receive_nowait()
        assert taken is not None and taken[1] == 3
        with socket.socket(fileno=taken[0]) as moved:
            moved.sendall(b"ping")
            assert b.recv(4) == b"ping"
        assert lobby.receive_nowait() is None
    finally:
        b.close()
        lobby.close()


@pytest.fixture
def board() -> Iterator[Board]:
    """The board of the worker the test's handlers belong to (one per worker, as in serve.py)."""
    board = Board.create()
    yield board
    board.close()


def _handler(board: Board, chunks: list[bytes]) -> HttpHandler:
    channel = ScriptedChannel(chunks)
    ctx = Context(hello, Config(), board)
    return HttpHandler(ctx, channel, {})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arrived", "expected"),
    [
        ([], True),  # fresh
        ([b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"], True),  # answered, idle between requests
        ([b"GET / HTTP/1.1\r\nHo"], False),  # half a head read
        ([b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nab"], False),  # body read
        ([b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"], False),  # done
    ],
)
def test_movable_means_nothing_read_since_the_last_response(
    board: Board, arrived: list[bytes], expected: bool
) -> None:
    handler = _handler(board, arrived)
    channel = handler.channel
    assert isinstance(channel, ScriptedChannel)
    if channel.deliver():
        handler.on_readable()
    assert handler.movable() is expected


@pytest.mark.parametrize(
    ("arrived", "expected"),
    [
        ([], True),  # fresh: its one request is still in the kernel
        ([bytes((0, 40, 0, 0)) + b"\x04\x00"], False),  # half a packet head read
    ],
)
def test_a_uwsgi_connection_is_movable_only_before_its_first_read(
    board: Board, arrived: list[bytes], expected: bool
) -> None:
    channel = ScriptedChannel(arrived)
    ctx = Context(hello, Config(), board)
    handler = UwsgiHandler(ctx, channel, {})  # type: ignore[arg-type]
    if channel.deliver():
        handler.on_readable()
    assert handler.movable() is expected


class _FakeBoard:
    def __init__(self, started: float, busy: int) -> None:
        self.state = (0, started, busy)

    def read(self) -> tuple[int, float, int]:
        return self.state


@pytest.mark.parametrize(
    ("started", "busy", "serving_free", "hands_over"),
    [
        (0.0, 1, True, True),  # a request running 10 s, the serving thread in it
        (9.99, 1, True, False),  # running 10 ms: under the delay
        (0.0, 0, True, False),  # no request running
        (0.0, 1, False, False),  # the serving thread is back in the loop: it serves itself
    ],
)
def test_the_watcher_hands_over_only_inside_a_slow_request(
    started: float, busy: int, serving_free: bool, hands_over: bool
) -> None:
    serving = _thread.allocate_lock()
    if not serving_free:
        serving.acquire()
    calls: list[bool] = []

    def hand_over() -> None:
        assert serving.locked()  # the watcher holds the serving lock while it works
        calls.append(True)

    watcher = Watcher(serving, _FakeBoard(started, busy), hand_over, 0.05, 1.0)  # type: ignore[arg-type]
    assert watcher.check(10.0) is hands_over
    assert calls == ([True] if hands_over else [])
    assert serving.locked() is not serving_free  # released again


def test_threads_hand_over_the_oldest_movable_waiters_and_keep_the_line_in_order(
    board: Board,
) -> None:
    pool = HandlerThreads(0, lambda handler: None, lambda handler, outcome: None)  # type: ignore[arg-type,return-value]
    old, half, young, full = (_handler(board, []) for _ in range(4))
    half.parser.feed(b"GET / HTTP/1.1\r\n")
    for n, handler in enumerate((old, half, full, young)):
        handler.channel.fd = n  # type: ignore[misc]
        pool.busy.add(n)
    pool.waiting.extend([(1.0, old), (1.0, half), (1.0, full), (9.0, young)])
    given: list[HttpHandler] = []

    def give_away(handler: Any) -> bool:
        if handler is full:
            return False  # the lobby fills up here
        given.append(handler)
        return True

    assert pool.hand_over_late(5.0, give_away) == 9.0  # `young` is due next
    assert given == [old]
    assert [handler for _, handler in pool.waiting] == [half, full, young]
    assert pool.busy == {1, 2, 3}


@pytest.mark.parametrize(
    ("head_waited", "in_lobby", "served_next"),
    [
        (0.01, True, "lobby"),  # the lobby's connection waited a delay already: older
        (0.01, False, "head"),  # nothing in the lobby
        (0.05, True, "head"),  # the head waited a delay too (could not go): it goes first
        (None, True, "lobby"),  # an empty line, every other thread busy: the lobby's
        (None, False, None),  # an empty line and lobby: the thread goes idle
    ],
)
def test_a_thread_that_frees_up_serves_the_lobby_before_its_own_line(
    board: Board, head_waited: float | None, in_lobby: bool, served_next: str | None
) -> None:
    head, lobbied = _handler(board, []), _handler(board, [])
    head.channel.fd, lobbied.channel.fd = 1, 2  # type: ignore[misc]
    asked: list[bool] = []

    def from_lobby() -> Any:
        asked.append(True)
        return lobbied if in_lobby else None

    pool = HandlerThreads(0, lambda h: None, lambda h, o: None, from_lobby, 0.05)  # type: ignore[arg-type,return-value]
    pool.idle = 0  # every other thread of the worker in a request
    if head_waited is not None:
        pool.busy.add(1)
        pool.waiting.append((time.monotonic() - head_waited, head))
    chosen = pool._next_nowait()
    assert chosen is {"lobby": lobbied, "head": head, None: None}[served_next]
    if served_next == "lobby" and head_waited is not None:
        assert pool.busy == {1, 2} and len(pool.waiting) == 1  # the head keeps its place
    assert asked == ([] if head_waited == 0.05 else [True])  # no look at the lobby otherwise


@contextmanager
def _two_threaded_workers() -> Iterator[tuple[_Server, _Server, socket.socket]]:
    """Two _Servers with 2 handler threads each, sharing a listener and a lobby; a client
    parked on the first, whose threads are all taken (as under overload)."""
    with _two_workers(threads=2) as (first, second, client):
        assert first.pool is not None
        with first.pool.lock:
            first.pool.idle = 0  # both threads in a request
        yield first, second, client


def _waiting_since(
    first: _Server, client: socket.socket, waited: float
) -> tuple[HandlerThreads, Any]:
    """The client's request, readable on `first` (no thread free), in its line as if it had
    waited `waited` seconds there: `first`'s pool and the connection's handler."""
    pool = first.pool
    assert pool is not None
    client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    _poll_once(first)  # no thread free: it waits in the line
    ((_, handler),) = pool.waiting
    pool.waiting[0] = (time.monotonic() - waited, handler)
    return pool, handler


@pytest.mark.parametrize(("waited", "handed_over"), [(0.0, False), (0.01, True)])
def test_with_threads_a_connection_that_waited_10_ms_in_the_line_goes_to_the_lobby(
    waited: float, handed_over: bool
) -> None:
    """Under overload every thread of every worker is busy, and a worker holds the clients
    it happened to accept: a line of 10 ms for a thread is a line that other workers'
    threads may free up for first (it was 50 ms, the one-thread watcher's delay: at
    Django's 4 threads, no request ever waited that long, and the longer lines stayed)."""
    with _two_threaded_workers() as (first, second, client):
        pool = _waiting_since(first, client, waited)[0]
        first._before_poll_threaded(pool, 1.0)
        assert (not pool.waiting, not first.conns) == (handed_over, handed_over)
        assert second._adopt() is handed_over
        if handed_over:
            _poll_once(second)  # parked on `second` now, readable: to a free thread of it
            assert _received(client).count(b"HTTP/1.1 200 OK") == 1


@pytest.mark.parametrize("why", ["read from", "lobby full"])
def test_a_late_connection_that_cannot_go_to_the_lobby_does_not_make_the_loop_spin(
    why: str,
) -> None:
    """Something read from it (a client trickling its next request) or a full lobby keeps
    a late connection in the line; the loop's next poll must still wait (for a thread to
    free up or the lobby's next look), not return at once until a thread takes it: a loop
    thread spinning under overload takes the GIL from the handler threads it waits for."""
    with _two_threaded_workers() as (first, _, client):
        pool, handler = _waiting_since(first, client, 0.05)
        if why == "read from":
            handler.parser.feed(b"GET /next HTTP/1.1\r\n")  # its next request, half of it
        else:
            first._give_away = lambda handler: False  # type: ignore[method-assign]
        timeout = first._before_poll_threaded(pool, 1.0)
        assert len(pool.waiting) == 1  # still in line
        assert timeout > 0.0


def test_a_thread_whose_line_is_empty_does_not_look_in_the_lobby_while_another_is_idle() -> None:
    """That worker keeps up: its loop polls the lobby for the idle thread, and a look
    (a poll system call) per request would cost hello world several percent."""
    asked: list[bool] = []

    def from_lobby() -> Any:
        asked.append(True)
        return None  # the lobby is empty: the assertions below, not an error, say it looked

    pool = HandlerThreads(0, lambda h: None, lambda h, o: None, from_lobby, 0.05)  # type: ignore[arg-type,return-value]
    pool.idle = 1
    assert pool._next_nowait() is None
    assert asked == []
