"""The lobby: where a busy worker leaves a ready connection for an idle worker of its generation.

One AF_UNIX SOCK_SEQPACKET socketpair per pool generation, made in the master before
that generation's first fork (`lobby_for`) and inherited by each of its workers. Every
worker sends on one end and polls the other, EPOLLEXCLUSIVE, so one idle worker takes
each message: one byte (the listener's index in the generation's listener list) and the
connection's fd as SCM_RIGHTS. What moves is only a connection with nothing read since
its last response (each handler's `movable()` says when): its pending bytes are still in
the kernel, so no parser state crosses processes, and the receiver adopts it as a freshly
accepted connection.

Rules, and where each is kept:
- A full lobby (`send_nowait` says False) means the connection stays where it is.
- A worker never reads a connection after sending it: it drops it from its table and
  epoll and closes its copy in the same step, under the lock its serving thread takes.
- A fd in transit is held by the socket, not by the sender: a sender that dies after
  sending loses nothing while any worker of the generation lives.
- A draining worker sends nothing but still receives (and serves what it receives with
  `Connection: close`), and takes what is left in the lobby before it exits: otherwise
  a reload would strand messages sent just before it in a lobby nobody reads.

The master keeps the pairs of the newest two generations, close-on-exec, so a standard
reload's execve does not carry them; a worker keeps its generation's pair and closes the
master's other fds (worker/entry.py).
"""

from __future__ import annotations

import _socket
import os
import sys

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from typing import Final

__all__ = ["Lobby", "lobby_for"]

_SPACE: Final = _socket.CMSG_SPACE(4)
_SOL: Final = _socket.SOL_SOCKET
_RIGHTS: Final = _socket.SCM_RIGHTS
# Errors that mean "not now" for a send: the lobby is full, or the kernel's limit on fds
# in flight is reached. The connection stays with its worker.
_FULL: Final = (BlockingIOError, InterruptedError)


class Lobby:
    """Both ends of one generation's socketpair."""

    __slots__ = ("inbox", "outbox")

    def __init__(self, outbox: _socket.socket, inbox: _socket.socket) -> None:
        self.outbox = outbox  # workers send here...
        self.inbox = inbox  # ...and poll this end

    @classmethod
    def create(cls) -> Lobby:
        kind = _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC | _socket.SOCK_NONBLOCK
        outbox, inbox = _socket.socketpair(_socket.AF_UNIX, kind, 0)
        return cls(outbox, inbox)

    def fds(self) -> set[int]:
        return {self.outbox.fileno(), self.inbox.fileno()}

    def send_nowait(self, fd: int, port: int) -> bool:
        """Put connection `fd` (of listener number `port`) in the lobby; False when full."""
        rights = fd.to_bytes(4, sys.byteorder)
        try:
            self.outbox.sendmsg([bytes((port,))], [(_SOL, _RIGHTS, rights)], _socket.MSG_DONTWAIT)
        except _FULL:
            return False
        except OSError as exc:  # ETOOMANYREFS, ENOBUFS: the same answer, it stays
            from sockactd.log import get_logger

            get_logger(__name__).debug("lobby refused a connection: %s", exc)
            return False
        return True

    def receive_nowait(self) -> tuple[int, int] | None:
        """Take one connection: (fd, listener number), or None when the lobby is empty."""
        try:
            data, ancillary, _, _ = self.inbox.recvmsg(
                1, _SPACE, _socket.MSG_DONTWAIT | _socket.MSG_CMSG_CLOEXEC
            )
        except (BlockingIOError, InterruptedError):
            return None
        fds = [
            int.from_bytes(cdata[:4], sys.byteorder)
            for level, kind, cdata in ancillary
            if level == _SOL and kind == _RIGHTS and len(cdata) >= 4
        ]
        if not fds:
            return None  # cannot happen from our own senders; nothing to adopt
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        return fds[0], data[0]

    def close(self) -> None:
        self.outbox.close()
        self.inbox.close()


_kept: dict[int, Lobby] = {}  # the master's: generation -> its lobby, the newest two


def lobby_for(generation: int) -> Lobby:
    """The master's lobby for `generation`, made on first use; older ones are closed.

    Workers keep their own copies; the master keeps a generation's pair only while it may
    still fork workers of it: the newest generation, and the one before it (a chain or
    workers reload in progress replaces a crashed old worker in the old generation).
    """
    lobby = _kept.get(generation)
    if lobby is None:
        lobby = _kept[generation] = Lobby.create()
        for old in [number for number in _kept if number < generation - 1]:
            _kept.pop(old).close()
    return lobby
