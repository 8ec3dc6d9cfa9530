"""The connection handlers, by the protocol name a listener carries (sockets.Listener.protocol).

One protocol, one module: http_handler.py, uwsgi_handler.py. Each handler is a
`connection.ConnectionHandler`; serve.py looks a listener's handler up here once,
when it sets the listener up, and never names a protocol itself. A new protocol
adds its module and one row below (docs/ARCHITECTURE.md, "Adding a protocol", lists
the other places it touches).

A row is a function that imports its handler's module: a server loads only the
protocols its listeners speak (the HTTP one brings httptools, ~2 ms of a cold start a
uwsgi-only server behind nginx does not need). worker/entry.py's `fork_worker` calls
`handler_for` for each listener in the master, before the fork, so the import is paid
once and shared by every worker.
"""

from __future__ import annotations

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Final

    from sockactd.worker.connection import ConnectionHandler

__all__ = ["HANDLERS", "handler_for"]


def _http() -> type[ConnectionHandler]:
    from sockactd.worker.http_handler import HttpHandler

    return HttpHandler


def _uwsgi() -> type[ConnectionHandler]:
    from sockactd.worker.uwsgi_handler import UwsgiHandler

    return UwsgiHandler


HANDLERS: Final[dict[str, Callable[[], type[ConnectionHandler]]]] = {
    "http": _http,
    "uwsgi": _uwsgi,
}


def handler_for(protocol: str) -> type[ConnectionHandler]:
    """The handler class of a listener's protocol, its module imported on first use;
    KeyError for a name sockets.py never gives."""
    return HANDLERS[protocol]()
