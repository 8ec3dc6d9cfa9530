"""The connection handlers, by the protocol name a listener carries (sockets.Listener.protocol).

One protocol, one module: http_handler.py, uwsgi_handler.py. Each handler is a
`connection.ConnectionHandler`; serve.py looks a listener's handler up here once,
when it sets the listener up, and never names a protocol itself. A new protocol
adds its module and one row below (docs/ARCHITECTURE.md, "Adding a protocol", lists
the other places it touches).
"""

from __future__ import annotations

from sockactd.worker.http_handler import HttpHandler
from sockactd.worker.uwsgi_handler import UwsgiHandler

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from typing import Final

    from sockactd.worker.connection import ConnectionHandler

__all__ = ["HANDLERS", "handler_for"]

HANDLERS: Final[dict[str, type[ConnectionHandler]]] = {
    "http": HttpHandler,
    "uwsgi": UwsgiHandler,
}


def handler_for(protocol: str) -> type[ConnectionHandler]:
    """The handler class of a listener's protocol; KeyError for a name sockets.py never gives."""
    return HANDLERS[protocol]
