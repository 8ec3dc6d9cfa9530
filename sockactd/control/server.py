"""The control socket's server side, driven by the master's selector; never blocks.

Theory of operation: the master calls `attach(loop)` once (its `Selector`,
master/loop.py's Loop: this module needs only its three calls); from
then on the server keeps the loop in sync with its own sockets (the listening
one and one per live connection). Each watch's callback names its connection,
never an fd number: a connection dropped earlier in a loop turn is never
confused with a new one that got the same number. Once per loop turn the master
calls `expire(now)` and sleeps at most until `next_deadline()`.

A connection lives through three states:

* READING  -- accepted, peer credentials checked (SO_PEERCRED: root or our own
  euid, anyone else gets a refusal and a warning in the log); we collect one
  line, at most `MAX_LINE` bytes, before `read_timeout` passes.
* WAITING  -- the request went to `on_request(request, replier)`; the master
  answers through the `Replier` at once or later (``reload --wait``). No
  deadline: the reload's own timeouts bound it. EOF here stops the read watch
  but keeps the socket, because a client may half-close after writing.
* WRITING  -- the one-line reply is written without blocking; on a short write
  the rest waits for EVENT_WRITE (bounded by `write_timeout`), so the master
  never blocks on a slow reader. The connection closes once the reply is out.

Any exception while handling one connection (a bug, a peer that vanished
mid-accept) closes that connection with an error reply and a log line; it never
reaches the master's loop. A reply to a client that went away is a no-op
(logged at debug). Across a
standard reload (execve) `prepare_exec()` makes the listening socket and the
WAITING connections inheritable; the new image passes the listening fd as
`inherited_fd` and calls `resume(fd)` for each waiting one.

This module never interprets a request beyond protocol.py's validation: what a
reload or status means is the master's business. It does build every reply line:
the master hands a `Replier` a status or a reload's result (`send_status`,
`send_result`, `send_queued`), never a protocol `Response`.

Why this module is over ~300 lines: it is one state machine -- the listener and
the three states of its connections, with their deadlines and the hand-over
across an execve -- and each part reads the others' private state (`_Connection`,
the loop's watches). Split, the moves of one connection would be spread across
files.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from sockactd.control.bind import bind_control_socket
from sockactd.control.protocol import (
    Command,
    ControlRequest,
    LineReader,
    Peer,
    Response,
    StatusData,
    decode_request,
    encode_response,
)
from sockactd.errors import ControlError
from sockactd.log import get_logger

READ: Final = selectors.EVENT_READ
WRITE: Final = selectors.EVENT_WRITE

__all__ = ["ControlHandover", "ControlServer", "OnRequest", "Replier", "Result", "Selector"]

log = get_logger(__name__)

_UCRED: Final = struct.Struct("3i")  # struct ucred: pid, uid, gid
_ACCEPTS_PER_EVENT: Final = 16  # bound one loop turn's work


QUEUED: Final = Response(True, "reload queued")


class _State(enum.Enum):
    READING = "reading"
    WAITING = "waiting"
    WRITING = "writing"


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    peer: Peer
    state: _State = _State.READING
    deadline: float | None = None
    reader: LineReader = field(default_factory=LineReader)
    outbuf: bytes = b""
    events: int = 0  # what the loop should watch for
    watch: Any = None  # the Selector's handle while watched
    closed: bool = False


@dataclass(frozen=True, slots=True)
class ControlHandover:
    """Fds a standard reload passes to the new image (inheritable after prepare_exec)."""

    listen_fd: int
    waiting_fds: tuple[int, ...]


class Selector(Protocol):
    """The master's loop as the server uses it (master/loop.py's Loop). A watch's handle is
    opaque here: it is only handed back to `modify` and `cancel`."""

    def watch(self, file: socket.socket, callback: Callable[[int], None], events: int = ...) -> Any:
        """Call `callback(events)` whenever `file` is ready for `events` (READ, WRITE)."""

    def modify(self, watch: Any, events: int) -> None: ...
    def cancel(self, watch: Any) -> None:
        """Stop watching; None or a cancelled watch is a no-op."""


class Result(Protocol):
    """How a reload request ended, in the master's terms (master/reloads.py: ReloadResult)."""

    @property
    def ok(self) -> bool: ...
    @property
    def message(self) -> str: ...


class Replier:
    """Answers one request, once. Keep it to answer later (``reload --wait``).

    The master hands it what it knows (a status, a reload's result); the reply line is
    built here.
    """

    def __init__(self, server: ControlServer, conn: _Connection) -> None:
        self._server = server
        self._conn = conn
        self.answered = False

    @property
    def peer(self) -> Peer:
        return self._conn.peer

    @property
    def gone(self) -> bool:
        """True when the connection is already closed; send() would be a no-op."""
        return self._conn.closed

    def send(self, response: Response) -> bool:
        """Queue `response` and close after writing it. False when nothing was sent."""
        if self.answered:
            log.warning("control: second answer to pid %d ignored: %s", self.peer.pid, response)
            return False
        self.answered = True
        if self._conn.closed:
            log.debug("control: pid %d left before its answer: %s", self.peer.pid, response)
            return False
        self._server._reply(self._conn, response)
        return True

    def send_status(self, text: str, data: StatusData) -> bool:
        return self.send(Response(True, text, dict(data)))

    def send_result(self, result: Result) -> bool:
        """Answer ``reload --wait``: ok when the reload was done, else why not."""
        return self.send(Response(result.ok, result.message))

    def send_queued(self, refused: Result | None) -> bool:
        """Answer a ``reload`` that does not wait: queued, or refused and why."""
        return self.send(Response(False, refused.message) if refused else QUEUED)


OnRequest = Callable[[ControlRequest, Replier], None]


def _peer_of(sock: socket.socket) -> Peer:
    pid, uid, gid = _UCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    )
    return Peer(pid=pid, uid=uid, gid=gid)


def _bind(path: str) -> socket.socket:
    return socket.socket(fileno=bind_control_socket(path))


def _adopt(path: str, fd: int) -> socket.socket:
    """Take the listening socket of the previous image; rebind if the path setting changed."""
    sock = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    bound = sock.getsockname()
    if isinstance(bound, str) and os.path.abspath(bound) == os.path.abspath(path):
        return sock
    log.info("control: socket moves from %s to %s", bound, path)
    sock.close()  # the old file stays behind as a stale socket; nothing answers on it
    return _bind(path)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:  # inherited socket whose file someone removed
        return None
    return st.st_dev, st.st_ino


class ControlServer:
    def __init__(
        self,
        path: str,
        on_request: OnRequest,
        *,
        inherited_fd: int | None = None,
        read_timeout: float = 5.0,
        write_timeout: float = 5.0,
        max_clients: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Bind `path` (mode 0600), or adopt `inherited_fd` after a standard reload."""
        self.path = path
        self._on_request = on_request
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._max_clients = max_clients
        self._clock = clock
        self._allowed = frozenset({0, os.geteuid()})
        self._sock = _bind(path) if inherited_fd is None else _adopt(path, inherited_fd)
        self._sock.setblocking(False)
        self._identity = _identity(path)
        self._handed_over = False  # prepare_exec() gave the path to the next image
        self._conns: dict[int, _Connection] = {}
        self._loop: Selector | None = None
        self._listen_watch: Any = None

    # --- loop integration -----------------------------------------------------------

    def fileno(self) -> int:
        return self._sock.fileno()

    def fds(self) -> list[int]:
        """The listening fd and every live connection's fd."""
        return [self._sock.fileno(), *self._conns]

    def attach(self, loop: Selector) -> None:
        """Watch our sockets in `loop` and keep the watches in sync from now on."""
        self._loop = loop
        self._listen_watch = loop.watch(self._sock, lambda events: self._accept_some())
        for conn in self._conns.values():
            self._sync(conn)

    def detach(self) -> None:
        if self._loop is None:
            return
        loop, self._loop = self._loop, None
        for conn in self._conns.values():
            loop.cancel(conn.watch)  # conn.events stays, for a later attach
            conn.watch = None
        loop.cancel(self._listen_watch)
        self._listen_watch = None

    def _on_event(self, conn: _Connection, events: int) -> None:
        if conn.closed:
            return
        try:
            if conn.state is _State.WRITING:
                if events & WRITE:
                    self._flush(conn)
            elif events & READ:
                self._read(conn)
        except Exception as exc:  # one connection's trouble never reaches the master's loop
            self._fail(conn, exc)

    def _fail(self, conn: _Connection, exc: Exception) -> None:
        """Close `conn` with an error reply (best effort) after an unexpected exception."""
        log.exception("control: connection from pid %d failed; closing it", conn.peer.pid)
        if conn.state is not _State.WRITING:
            self._send_once(conn, Response(False, f"internal error: {type(exc).__name__}"))
        self._drop(conn)

    def next_deadline(self) -> float | None:
        """Earliest read/write deadline (on `clock`), None when nothing is pending."""
        deadlines = [c.deadline for c in self._conns.values() if c.deadline is not None]
        return min(deadlines, default=None)

    def expire(self, now: float | None = None) -> int:
        """Drop connections past their deadline; returns how many."""
        now = self._clock() if now is None else now
        late = [c for c in self._conns.values() if c.deadline is not None and c.deadline <= now]
        for conn in late:
            if conn.state is _State.READING:
                log.info(
                    "control: pid %d sent no request in %.1fs", conn.peer.pid, self._read_timeout
                )
                self._send_once(conn, Response(False, "timed out waiting for a request line"))
            else:
                log.info("control: pid %d did not read its answer; dropping", conn.peer.pid)
            self._drop(conn)
        return len(late)

    # --- standard reload (execve) ----------------------------------------------------

    def prepare_exec(self) -> ControlHandover:
        """Make the listener and WAITING connections inheritable for an execve."""
        waiting = tuple(fd for fd, c in self._conns.items() if c.state is _State.WAITING)
        for fd in (self._sock.fileno(), *waiting):
            os.set_inheritable(fd, True)
        self._handed_over = True
        return ControlHandover(self._sock.fileno(), waiting)

    def cancel_exec(self) -> None:
        """The execve did not happen: keep our fds from leaking into forked workers."""
        for fd in self.fds():
            os.set_inheritable(fd, False)
        self._handed_over = False

    def resume(self, fd: int) -> Replier:
        """Adopt a connection that waited for a reload's outcome in the previous image."""
        sock = socket.socket(fileno=fd)
        os.set_inheritable(fd, False)
        sock.setblocking(False)
        conn = _Connection(sock, _peer_of(sock), state=_State.WAITING)
        self._conns[fd] = conn
        self._watch(conn, READ)
        return Replier(self, conn)

    def close(self) -> None:
        """Close every connection and the listener; unlink the path if it is still ours.

        After prepare_exec() (and no cancel_exec()) the path belongs to the next image
        and stays.
        """
        self.detach()
        for conn in list(self._conns.values()):
            self._drop(conn)
        self._sock.close()
        if self._handed_over or self._identity is None:
            return
        if _identity(self.path) == self._identity:
            os.unlink(self.path)

    # --- connections ----------------------------------------------------------------

    def _accept_some(self) -> None:
        for _ in range(_ACCEPTS_PER_EVENT):
            try:
                sock, _ = self._sock.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # EMFILE and friends: retry on the next event
                log.warning("control: accept on %s failed: %s", self.path, exc)
                return
            try:
                self._admit(sock)
            except Exception:  # e.g. the peer reset before SO_PEERCRED could be read
                log.exception("control: could not admit a connection on %s", self.path)
                conn = self._conns.pop(sock.fileno(), None)
                if conn is not None:
                    self._drop(conn)
                sock.close()

    def _admit(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        conn = _Connection(sock, _peer_of(sock))
        self._conns[sock.fileno()] = conn
        if conn.peer.uid not in self._allowed:
            log.warning(
                "control: refused pid %d uid %d gid %d on %s (only root or uid %d may control)",
                conn.peer.pid,
                conn.peer.uid,
                conn.peer.gid,
                self.path,
                os.geteuid(),
            )
            message = f"permission denied: uid {conn.peer.uid} may not control this server"
            self._reply(conn, Response(False, message))
        elif len(self._conns) > self._max_clients:
            busy = len(self._conns) - 1
            log.warning("control: %d clients connected; refusing pid %d", busy, conn.peer.pid)
            self._reply(conn, Response(False, "server busy: too many control clients"))
        else:
            conn.deadline = self._clock() + self._read_timeout
            self._watch(conn, READ)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError as exc:
            log.debug("control: pid %d: %s", conn.peer.pid, exc)
            self._drop(conn)
            return
        if conn.state is _State.WAITING:
            # EOF or stray bytes: stop watching; the answer still goes out if it can
            self._watch(conn, 0)
        elif not data:
            self._drop(conn)  # closed before finishing its request
        else:
            self._collect(conn, data)

    def _collect(self, conn: _Connection, data: bytes) -> None:
        try:
            line = conn.reader.feed(data)
            if line is None:
                return
            request = decode_request(line)
        except ControlError as exc:
            log.info("control: bad request from pid %d: %s", conn.peer.pid, exc)
            self._reply(conn, Response(False, f"bad request: {exc}"))
            return
        conn.state, conn.deadline = _State.WAITING, None
        self._dispatch(conn, dataclasses.replace(request, peer=conn.peer))

    def _dispatch(self, conn: _Connection, request: ControlRequest) -> None:
        # One plain line per reload at INFO; a status poll (monitoring asks often) at DEBUG.
        if request.command is Command.RELOAD:
            log.info(
                "control: reload (mode %s%s) asked by pid %d uid %d",
                request.mode or "configured", ", waited for" if request.wait else "",
                conn.peer.pid, conn.peer.uid,
            )  # fmt: skip
        else:
            log.debug("control: %s from pid %d uid %d", request.command.value, conn.peer.pid,
                      conn.peer.uid)  # fmt: skip
        replier = Replier(self, conn)
        try:
            self._on_request(request, replier)
        except Exception as exc:  # a master bug must not take the master down with it
            log.exception("control: handling %s failed", request)
            if not replier.answered:
                replier.send(Response(False, f"internal error: {exc!r}"))

    def _reply(self, conn: _Connection, response: Response) -> None:
        conn.outbuf = encode_response(response)
        conn.state, conn.deadline = _State.WRITING, self._clock() + self._write_timeout
        self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
        except BlockingIOError:
            sent = 0
        except OSError as exc:  # EPIPE, ECONNRESET: the client left
            log.debug("control: pid %d left before its answer: %s", conn.peer.pid, exc)
            self._drop(conn)
            return
        conn.outbuf = conn.outbuf[sent:]
        if conn.outbuf:
            self._watch(conn, WRITE)
        else:
            self._drop(conn)

    def _send_once(self, conn: _Connection, response: Response) -> None:
        try:
            conn.sock.send(encode_response(response))
        except OSError:
            pass  # best effort: the connection is dropped anyway

    def _watch(self, conn: _Connection, events: int) -> None:
        conn.events = events
        self._sync(conn)

    def _sync(self, conn: _Connection) -> None:
        """Make the loop watch `conn` for `conn.events` (nothing when 0)."""
        loop = self._loop
        if loop is None:
            return
        if not conn.events:
            loop.cancel(conn.watch)
            conn.watch = None
        elif conn.watch is None:
            conn.watch = loop.watch(conn.sock, lambda ev: self._on_event(conn, ev), conn.events)
        else:
            loop.modify(conn.watch, conn.events)

    def _drop(self, conn: _Connection) -> None:
        if conn.closed:
            return
        self._watch(conn, 0)
        self._conns.pop(conn.sock.fileno(), None)
        conn.closed = True
        conn.sock.close()
