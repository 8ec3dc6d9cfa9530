"""worker/handlers.py: every protocol a listener can speak has one handler and its counters."""

from __future__ import annotations

from sockactd.config.model import Config
from sockactd.sockets import BIND_SETTINGS, DEFAULT_PROTOCOL, PROTOCOL_BY_NAME
from sockactd.worker.board import PROTOCOLS
from sockactd.worker.connection import ConnectionHandler
from sockactd.worker.handlers import HANDLERS, handler_for


def test_every_protocol_sockets_can_give_has_a_handler_and_metrics_counters() -> None:
    given = {DEFAULT_PROTOCOL, *PROTOCOL_BY_NAME.values(), *BIND_SETTINGS}
    assert given == set(HANDLERS) == set(PROTOCOLS)
    undeclared = [name for name in HANDLERS
                  if handler_for(name).movable is ConnectionHandler.movable]  # fmt: skip
    assert undeclared == [], "say when the lobby may move its connections (docs/ARCHITECTURE.md)"


def test_each_bind_setting_is_a_list_of_addresses() -> None:
    defaults = Config()
    assert {field: getattr(defaults, field) for field in BIND_SETTINGS.values()} == {
        field: [] for field in BIND_SETTINGS.values()
    }


def test_each_handler_reads_its_own_bytes() -> None:
    for protocol in HANDLERS:
        handler = handler_for(protocol)
        assert issubclass(handler, ConnectionHandler)
        assert handler.on_bytes is not ConnectionHandler.on_bytes, protocol
