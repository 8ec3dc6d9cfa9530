"""One client socket, read and written without socket timeouts: MSG_DONTWAIT plus our own poll.

Accepted sockets stay in blocking mode (saving an ioctl per connection); every
recv/send passes MSG_DONTWAIT, and only when the kernel says EAGAIN do we poll
for up to `timeout` seconds (socket-timeout). A hello-world request therefore
costs one recv and one send, never a poll that would precede them.

Errors: a peer that goes away raises ConnectionError subclasses, a peer that
stalls raises TimeoutError; the callers (exchange.py, handlers) decide what
that means for the request. This module does not log.
"""

from __future__ import annotations

import _socket
import os
import select
import time

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from _socket import socket as RawSocket
    from typing import Any, Final

__all__ = ["BodyDeadline", "Channel"]

_DONTWAIT: Final = _socket.MSG_DONTWAIT
_MORE: Final = _socket.MSG_DONTWAIT | _socket.MSG_MORE
_RECV_SIZE: Final = 65536
_SMALL: Final = 65536  # below this, head and body are joined into one send


class Channel:
    """`sock` may be a plain _socket.socket: the worker skips socket.socket's Python layer."""

    __slots__ = ("_address", "_nodelay", "_peer", "fd", "sock", "tcp", "timeout")

    def __init__(self, sock: RawSocket, address: Any, timeout: float, tcp: bool):
        self.sock = sock
        self.fd = sock.fileno()
        self._address = address  # as accept() returned it: (host, port, ...) or a UNIX path
        self._peer: tuple[str, str] | None = None
        self.timeout = timeout
        self.tcp = tcp
        self._nodelay = not tcp  # UNIX sockets have no Nagle to turn off

    @property
    def peer(self) -> tuple[str, str]:
        """(address, port) as strings; ("", "") on a UNIX socket. Built on first use: a
        uwsgi request carries its client in its vars and needs this only to log."""
        peer = self._peer
        if peer is None:
            address = self._address
            tcp = isinstance(address, tuple)
            peer = self._peer = (str(address[0]), str(address[1])) if tcp else ("", "")
        return peer

    def recv_nowait(self) -> bytes | None:
        """Bytes available now; b"" at end of stream; None when nothing is there yet."""
        try:
            return self.sock.recv(_RECV_SIZE, _DONTWAIT)
        except BlockingIOError:
            return None

    def recv_wait(self, deadline: BodyDeadline | None = None) -> bytes:
        """Bytes, waiting up to `timeout`; b"" at end of stream; TimeoutError when idle.

        With a `deadline`, waiting also ends (TimeoutError) when the deadline passes.
        """
        while True:
            try:
                data = self.sock.recv(_RECV_SIZE, _DONTWAIT)
            except BlockingIOError:
                if deadline is None:
                    self._wait(select.POLLIN)
                else:
                    self._wait(select.POLLIN, deadline.wait_limit(self.timeout), deadline.why)
                continue
            if deadline is not None:
                deadline.received += len(data)
            return data

    def send(self, data: bytes) -> None:
        """Send all of `data`, waiting at most `timeout` each time the kernel is full."""
        try:
            sent = self.sock.send(data, _DONTWAIT)
        except BlockingIOError:
            sent = 0
        total = len(data)
        if sent >= total:
            return  # the common case: the kernel took it all at once
        view = memoryview(data)
        while sent < total:
            try:
                sent += self.sock.send(view[sent:], _DONTWAIT)
            except BlockingIOError:
                self._wait(select.POLLOUT)

    def send_parts(self, head: bytes, body: bytes, last: bool = False) -> None:
        """Head and body with one system call where possible.

        `last`: nothing more will be written and the caller closes the connection
        right after, without waiting for anything. On TCP the bytes are then held
        back (MSG_MORE) and leave with the FIN when the socket is closed, in one
        segment, instead of data, the peer's ACK, then FIN. A caller that might
        wait before closing must not pass `last`: the bytes would wait with it.
        """
        if len(body) < _SMALL:
            head, body = head + body, b""
        elif head:
            self.send(head)
            head, body = body, b""
        if not last or not self.tcp:
            self.send(head)
            return
        try:
            sent = self.sock.send(head, _MORE)
        except BlockingIOError:
            sent = 0
        if sent < len(head):
            self.send(head[sent:])  # rare; sent without MSG_MORE, so pushed at once

    def nodelay(self) -> None:
        """Turn off Nagle once a response needs several sends (streaming, chunked)."""
        if not self._nodelay:
            self._nodelay = True
            try:
                self.sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        """Send `count` bytes of file `fd` from `offset` with os.sendfile; return bytes sent."""
        sent = 0
        self.sock.setblocking(False)  # sendfile takes no flags
        try:
            while sent < count:
                try:
                    n = os.sendfile(self.fd, fd, offset + sent, count - sent)
                except BlockingIOError:
                    self._wait(select.POLLOUT)
                    continue
                if n == 0:
                    break  # the file shrank under us
                sent += n
        finally:
            self.sock.setblocking(True)
        return sent

    def _wait(self, events: int, limit: float = -1.0, why: str = "") -> None:
        poller = select.poll()
        poller.register(self.fd, events)
        wait = self.timeout if limit < 0 else limit
        if not poller.poll(wait * 1000.0):
            if wait < self.timeout:
                raise TimeoutError(f"client {self.peer[0]} {why}")
            raise TimeoutError(f"client {self.peer[0]} idle for {self.timeout:g}s")

    def close(self) -> None:
        self.sock.close()


class BodyDeadline:
    """When a request body must have arrived: `limit` seconds after the first wait for it,
    plus one second for every `rate` bytes received so far.

    A steady upload, however long, keeps moving its deadline; a body trickled in a byte
    at a time runs out after about `limit` seconds and frees the worker. (The rule of
    Apache's mod_reqtimeout: body-timeout, extended at body-min-rate.) rate 0: a fixed
    deadline for the whole body.
    """

    __slots__ = ("_limit", "_rate", "_start", "received")

    def __init__(self, limit: float, rate: int) -> None:
        self._limit = limit
        self._rate = rate
        self._start = 0.0
        self.received = 0

    @property
    def why(self) -> str:
        return f"sent its request body too slowly (body-timeout {self._limit:g}s)"

    def wait_limit(self, idle: float) -> float:
        """How long the next wait may last: `idle` (socket-timeout), or less if due sooner."""
        now = time.monotonic()
        if not self._start:
            self._start = now
        due = self._start + self._limit + (self.received / self._rate if self._rate else 0.0)
        return min(idle, max(0.0, due - now))
