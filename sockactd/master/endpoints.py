"""The master's monitoring sockets (metrics, stats), opened at start-up beside the app's.

Rule 1: a socket systemd passed in under a monitoring name (`metrics`, `stats`
        in LISTEN_FDNAMES) is the master's: it never reaches open_listeners(),
        so no worker ever accepts on it, and its setting's address is not bound.
Rule 2: otherwise the setting's address (TCP or UNIX path) is bound here, before
        the app's sockets are bound (master/run.py), so a bad address fails the
        start with a clear message and nothing else bound or forked.
Rule 3: a standard reload hands them to the new image like the app's sockets,
        by name, so monitoring never stops and nothing is bound twice.
Rule 4: on stop, only UNIX paths bound here are unlinked; systemd's never are.
On the start-up path: only _socket, and nothing at all when monitoring is off.
Serving them is monitor.py's job, in the master's loop.
"""

from __future__ import annotations

import _socket
import os

from sockactd.errors import ActivationError, ConfigError
from sockactd.sockets import _remove_stale_unix_socket, parse_address

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Sequence

    from sockactd.config.model import Config
    from sockactd.systemd.activation import InheritedFd

__all__ = ["MONITOR_NAMES", "MonitorSocket", "open_monitor_sockets", "split_inherited"]

METRICS = "metrics"
STATS = "stats"
MONITOR_NAMES = (METRICS, STATS)  # FileDescriptorName= of the monitoring sockets
_SETTING = {METRICS: "metrics-socket", STATS: "stats"}


class MonitorSocket:
    __slots__ = ("address", "http", "inherited", "name", "sock")

    def __init__(
        self, name: str, sock: _socket.socket, address: str, http: bool = True,
        inherited: bool = False,
    ) -> None:  # fmt: skip
        self.name = name  # "metrics" or "stats"
        self.sock = sock  # listening, non-blocking, FD_CLOEXEC
        self.address = address  # for logs
        self.http = http  # speaks HTTP; else uWSGI's raw stats (JSON on connect)
        self.inherited = inherited  # passed in by systemd (or our own pre-exec self)

    def fileno(self) -> int:
        return self.sock.fileno()

    def __repr__(self) -> str:
        return f"<MonitorSocket {self.name} {self.address}>"


def split_inherited(
    inherited: Sequence[InheritedFd],
) -> tuple[list[InheritedFd], list[InheritedFd]]:
    """(the application's fds, the monitoring ones) of what systemd passed in."""
    app = [fd for fd in inherited if fd.name not in MONITOR_NAMES]
    return app, [fd for fd in inherited if fd.name in MONITOR_NAMES]


def wanted(config: Config, inherited: Sequence[InheritedFd]) -> bool:
    return bool(config.metrics_socket or config.stats or inherited)


def open_monitor_sockets(config: Config, inherited: Sequence[InheritedFd]) -> list[MonitorSocket]:
    """The inherited monitoring sockets, then a bound one for each setting systemd did not pass."""
    sockets: list[MonitorSocket] = []
    try:
        sockets.extend(_wrap(fd) for fd in inherited)
        have = {sock.name for sock in sockets}
        for name, address in ((METRICS, config.metrics_socket), (STATS, config.stats)):
            if address and name not in have:
                sockets.append(_bind(name, address))
        if any(sock.name == METRICS for sock in sockets):
            _require_prometheus_client()
    except (ActivationError, ConfigError):
        close_monitor_sockets(sockets, unlink=True)  # the start fails: none stays bound
        raise
    for sock in sockets:
        sock.http = sock.name == METRICS or config.stats_http
    return sockets


def close_monitor_sockets(sockets: Sequence[MonitorSocket], unlink: bool) -> None:
    """Close them; with `unlink`, remove the UNIX socket files bound here (Rule 4)."""
    for item in sockets:
        name = item.sock.getsockname()
        item.sock.close()
        if unlink and not item.inherited and isinstance(name, str) and name.startswith("/"):
            try:
                os.unlink(name)
            except OSError:
                pass


def _wrap(inherited: InheritedFd) -> MonitorSocket:
    try:
        sock = _socket.socket(fileno=inherited.fd)
    except OSError as exc:
        raise ActivationError(f"fd {inherited.fd} ({inherited.name}): {exc.strerror}") from None
    sock.setblocking(False)
    shown = f"fd {inherited.fd} ({inherited.name})"
    return MonitorSocket(inherited.name, sock, shown, inherited=True)


def _bind(name: str, text: str) -> MonitorSocket:
    address = parse_address(text)
    sock = _socket.socket(address.family, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        if address.is_unix:
            _remove_stale_unix_socket(str(address.sockaddr))
        else:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind(address.sockaddr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ActivationError(
            f"cannot bind {_SETTING[name]} {text}: {exc.strerror}", exc.errno or 22
        ) from None
    sock.setblocking(False)
    host, port = ("", 0) if address.is_unix else sock.getsockname()[:2]
    shown = text if address.is_unix else f"{host}:{port}"
    return MonitorSocket(name, sock, shown)


def _require_prometheus_client() -> None:
    from importlib.util import find_spec  # only with metrics on: not on the start-up path

    if find_spec("prometheus_client") is None:
        raise ConfigError(
            "metrics-socket",
            "needs the Python module prometheus_client "
            "(Debian: apt install python3-prometheus-client; or pip install prometheus-client)",
        )
