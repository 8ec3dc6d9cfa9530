"""Named, verified listening sockets: inherited from systemd, or bound for development.

PLACEHOLDER contract; the full module (verification, binding, UNIX paths,
backlog) is being written. The Listener record below is the interface the
master and the workers use.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

__all__ = ["Listener"]


@dataclass(frozen=True, slots=True)
class Listener:
    sock: socket.socket          # listening, non-blocking, FD_CLOEXEC
    protocol: str                # "http" or "uwsgi"
    address: str                 # for logs: "127.0.0.1:8000", "/run/sockactd/app.sock", "fd 3 (http)"
    inherited: bool              # True when systemd (or our own pre-exec self) passed it in
