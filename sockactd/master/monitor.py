"""Serving the monitoring sockets from the master's loop: bounded, never blocking.

Two dialects. HTTP (metrics-socket; stats with stats-http): one request per
connection, GET and HEAD only (405 otherwise), an unknown path 404, the answer
with Content-Length and `Connection: close`. Raw (uWSGI's stats server): the
answer is written the moment a connection is accepted; what the client sends
is never read.

Rule 1: the master never waits for a monitoring client. Sockets are non-blocking;
        a short write waits for EVENT_WRITE.
Rule 2: everything is bounded. A request head is at most MAX_HEAD bytes and must
        arrive within READ_TIMEOUT, an answer must be taken within WRITE_TIMEOUT
        (both expired once a second by the master's tick); at most MAX_CONNECTIONS
        at once per socket -- a newcomer past that evicts the connection that has
        waited longest without sending a whole request (a slow or idle client),
        or is closed itself; at most ACCEPTS_PER_TURN accepts per loop turn.
Rule 3: a page is rendered at most once per RENDER_EVERY for the same path and
        Accept header; clients in between get the same bytes (uWSGI's raw dialect
        renders on every connect, so a connect flood would otherwise cost a render
        -- /proc reads included -- per connection).
So a flood costs the loop a bounded amount of work per turn, and a reload or
a worker's exit is handled between turns as always.
This module knows no metric: `Page` callables render the answers.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from sockactd.log import get_logger
from sockactd.master.endpoints import MonitorSocket
from sockactd.master.loop import WRITE, Loop, Watch

__all__ = ["Answer", "MonitorServer", "Page"]

log = get_logger(__name__)

MAX_HEAD: Final = 8192
READ_TIMEOUT: Final = 5.0
WRITE_TIMEOUT: Final = 10.0
MAX_CONNECTIONS: Final = 64
ACCEPTS_PER_TURN: Final = 32
RENDER_EVERY: Final = 0.1  # seconds


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes


# HTTP: (path, lower-cased request headers) -> answer, or None for 404. Raw: ("", {}).
Page = Callable[[str, Mapping[str, str]], Answer | None]

_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    deadline: float
    head: bytearray = field(default_factory=bytearray)
    out: bytes = b""
    writing: bool = False
    watch: Watch | None = None


class MonitorServer:
    def __init__(
        self,
        endpoint: MonitorSocket,
        page: Page,
        loop: Loop,
        clock: Callable[[], float],
    ) -> None:
        self.endpoint = endpoint
        self._listener = socket.socket(fileno=endpoint.sock.detach())
        endpoint.sock = self._listener  # one socket object owns the fd from now on
        self._page = page
        self._rendered: dict[tuple[str, str], tuple[float, Answer | None]] = {}
        self._http = endpoint.http
        self._loop = loop
        self._clock = clock
        self._conns: dict[int, _Conn] = {}
        self._listen_watch = loop.watch(self._listener, self._on_listener)

    # --- the master's calls ---------------------------------------------------------
    def expire(self, now: float) -> None:
        for conn in [c for c in self._conns.values() if now >= c.deadline]:
            self._drop(conn)

    def close(self) -> None:
        for conn in list(self._conns.values()):
            self._drop(conn)
        self._loop.cancel(self._listen_watch)

    def connections(self) -> int:
        return len(self._conns)

    # --- events -------------------------------------------------------------------------
    def _on_listener(self, events: int) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("%s socket: accept failed: %s", self.endpoint.name, exc)
                return
            sock.setblocking(False)
            if len(self._conns) >= MAX_CONNECTIONS and not self._evict():
                sock.close()
                continue
            self._admit(sock)

    def _admit(self, sock: socket.socket) -> None:
        conn = _Conn(sock, self._clock() + READ_TIMEOUT)
        self._conns[sock.fileno()] = conn
        conn.watch = self._loop.watch(sock, lambda events: self._step(conn, events))
        if not self._http:
            self._answer(conn, self._render_raw())

    def _evict(self) -> bool:
        reading = [c for c in self._conns.values() if not c.writing]
        if not reading:
            return False
        self._drop(min(reading, key=lambda c: c.deadline))
        return True

    def _step(self, conn: _Conn, events: int) -> None:
        if conn.writing:
            self._flush(conn)
            return
        try:
            data = conn.sock.recv(MAX_HEAD + 1 - len(conn.head))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.head += data
        end = conn.head.find(b"\r\n\r\n")
        if end < 0:
            end = conn.head.find(b"\n\n")
        if end >= 0:
            self._answer(conn, self._respond(bytes(conn.head[:end])))
        elif len(conn.head) > MAX_HEAD:
            self._answer(conn, _error(431))

    # --- HTTP -----------------------------------------------------------------------------
    def _respond(self, head: bytes) -> bytes:
        lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return _error(400)
        method, target, _ = parts
        if method not in ("GET", "HEAD"):
            return _error(405)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                return _error(400)
            headers[name.lower()] = value.strip()
        try:
            answer = self._render(target.partition("?")[0], headers)
        except Exception:  # a bug in rendering must not end the master
            log.exception("%s socket: rendering failed", self.endpoint.name)
            return _error(500)
        if answer is None:
            return _error(404)
        response = _head(answer.status, answer.content_type, len(answer.body))
        return response if method == "HEAD" else response + answer.body

    def _render(self, path: str, headers: Mapping[str, str]) -> Answer | None:
        """The page's answer, rendered again only after RENDER_EVERY (Rule 3)."""
        key, now = (path, headers.get("accept", "")), self._clock()
        cached = self._rendered.get(key)
        if cached is not None and now - cached[0] < RENDER_EVERY:
            return cached[1]
        if len(self._rendered) > 16:  # a client inventing Accept headers: forget them all
            self._rendered.clear()
        answer = self._page(path, headers)
        self._rendered[key] = (now, answer)
        return answer

    def _render_raw(self) -> bytes:
        try:
            answer = self._render("", {})
        except Exception:
            log.exception("%s socket: rendering failed", self.endpoint.name)
            return b""
        return answer.body if answer is not None else b""

    # --- writing ------------------------------------------------------------------------
    def _answer(self, conn: _Conn, data: bytes) -> None:
        conn.out, conn.writing = data, True
        conn.deadline = self._clock() + WRITE_TIMEOUT
        if conn.watch is not None:
            self._loop.modify(conn.watch, WRITE)
        self._flush(conn)

    def _flush(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        conn.out = conn.out[sent:]
        if not conn.out:
            self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if fd >= 0 and self._conns.get(fd) is conn:
            del self._conns[fd]
            self._loop.cancel(conn.watch)
            conn.sock.close()


def _head(status: int, content_type: str, length: int) -> bytes:
    return (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")


def _error(status: int) -> bytes:
    body = f"{status} {_REASONS[status]}\n".encode()
    head = _head(status, "text/plain; charset=utf-8", len(body))
    if status == 405:
        head = head.replace(b"Connection: close", b"Allow: GET, HEAD\r\nConnection: close")
    return head + body
