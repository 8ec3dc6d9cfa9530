"""Named, verified listening sockets: inherited from systemd, or bound for development.

Rule 1: a socket systemd passed in is wrapped and verified (a listening stream
        socket), made non-blocking and close-on-exec, and never bound or listen()ed
        again -- that would override the socket unit's Backlog=.
Rule 2: every --http-socket / --socket address not already passed in is bound here
        (SO_REUSEADDR, backlog --listen or the kernel maximum). A UNIX socket file
        is removed first only when nothing answers on it.
Rule 3: on stop, only UNIX paths bound here are unlinked; systemd's never are.

Address forms: HOST:PORT, [IPv6]:PORT, :PORT (all IPv4 interfaces; write [::]:PORT
for IPv6), or a UNIX socket path (contains "/" or ends with ".sock").
This module does not accept connections; the workers do.

Why just over 300 lines: inherited sockets, addresses and binding share `Listener`
and `Address` and the close-on-failure rule of open_listeners; each has its section.
"""

from __future__ import annotations

# Listener.sock is a _socket.socket (socket.socket's base class).
import _socket
import errno
import os
import stat

from sockactd.errors import ActivationError
from sockactd.log import get_logger

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from typing import Any

    from sockactd.config.model import Config
    from sockactd.systemd.activation import InheritedFd

__all__ = ["Listener", "close_listeners", "open_listeners", "parse_address"]

log = get_logger(__name__)

SOMAXCONN_PATH = "/proc/sys/net/core/somaxconn"
NO_SOCKETS = "no sockets: pass --http-socket/--socket or start under systemd socket activation"
# The protocol a listener speaks (worker/handlers.py finds its handler by this name):
# systemd's FileDescriptorName= names it, any other name is http; a socket bound here
# speaks the protocol of the setting that lists its address.
DEFAULT_PROTOCOL = "http"
PROTOCOL_BY_NAME = {"uwsgi": "uwsgi"}
BIND_SETTINGS = {"http": "http_socket", "uwsgi": "socket"}  # protocol -> Config field


class Listener:
    __slots__ = ("address", "inherited", "protocol", "sock")

    def __init__(self, sock: _socket.socket, protocol: str, address: str, inherited: bool) -> None:
        self.sock = sock  # listening, non-blocking, FD_CLOEXEC
        self.protocol = protocol  # a key of worker/handlers.py's HANDLERS
        self.address = (
            address  # for logs: "127.0.0.1:8000", "/run/sockactd/app.sock", "fd 3 (http)"
        )
        self.inherited = inherited  # True when systemd (or our own pre-exec self) passed it in

    def __repr__(self) -> str:
        return f"<Listener {self.address} ({self.protocol})>"


class Address:
    """A parsed bind address: `sockaddr` is what socket.bind() takes."""

    __slots__ = ("family", "sockaddr", "text")

    def __init__(self, family: int, sockaddr: str | tuple[str, int], text: str) -> None:
        self.family = family
        self.sockaddr = sockaddr
        self.text = text  # as the user wrote it, for messages

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Address) and (self.family, self.sockaddr, self.text) == (
            other.family,
            other.sockaddr,
            other.text,
        )

    def __hash__(self) -> int:
        return hash((self.family, self.sockaddr, self.text))

    def __repr__(self) -> str:
        return f"Address({self.family!r}, {self.sockaddr!r}, {self.text!r})"

    @property
    def is_unix(self) -> bool:
        return self.family == _socket.AF_UNIX


def open_listeners(config: Config, inherited: Sequence[InheritedFd]) -> list[Listener]:
    """Wrap the inherited fds, then bind every configured address systemd did not pass.

    Raises ActivationError (errno set) naming the fd or address at fault, after
    closing whatever was already opened; also when there is no socket at all.
    """
    listeners: list[Listener] = []
    try:
        listeners.extend(_wrap_inherited(fd) for fd in inherited)
        taken = {_sockname_key(item.sock.getsockname()) for item in listeners}
        for text, protocol in _configured(config):
            address = parse_address(text)
            if _address_key(address) in taken:
                log.info(
                    "%s is already inherited (systemd or the previous master image); "
                    "not binding it again",
                    text,
                )
                continue
            listeners.append(_bind(address, protocol, config))
            taken.add(_sockname_key(listeners[-1].sock.getsockname()))
    except BaseException:
        close_listeners(listeners, unlink=True)
        raise
    if not listeners:
        raise ActivationError(NO_SOCKETS, errno.EINVAL)
    return listeners


def close_listeners(listeners: Iterable[Listener], unlink: bool) -> None:
    """Close every listener; with `unlink`, remove the UNIX socket files bound by us."""
    for listener in listeners:
        path = _own_unix_path(listener) if unlink else None
        listener.sock.close()
        if path is not None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _own_unix_path(listener: Listener) -> str | None:
    if listener.inherited or listener.sock.family != _socket.AF_UNIX:
        return None
    try:
        name = listener.sock.getsockname()
    except OSError:
        return None
    # An abstract name comes back as bytes or starting with NUL: nothing to unlink.
    return name if isinstance(name, str) and name.startswith("/") else None


def _configured(config: Config) -> Iterator[tuple[str, str]]:
    # Each field read by name, not getattr(config, field): tests/unit/config/test_applies.py
    # finds a setting's readers by their `config.X` reads. A protocol added to BIND_SETTINGS
    # without its read here fails with KeyError at the first start.
    addresses = {"http_socket": config.http_socket, "socket": config.socket}
    for protocol, field in BIND_SETTINGS.items():
        for text in addresses[field]:
            yield text, protocol


# --- inherited sockets ---------------------------------------------------------------


def _wrap_inherited(inherited: InheritedFd) -> Listener:
    fd, name = inherited.fd, inherited.name
    try:
        sock = _socket.socket(fileno=fd)
    except OSError as exc:
        raise ActivationError(
            f"fd {fd} ({name}) from systemd is not a socket: {exc.strerror}",
            exc.errno or errno.ENOTSOCK,
        ) from None
    try:
        _verify_listening(sock, f"fd {fd} ({name})")
        sock.setblocking(False)
        os.set_inheritable(sock.fileno(), False)
    except BaseException:
        sock.close()
        raise
    address = f"fd {fd} ({name}) {_format_sockname(sock.getsockname())}"
    return Listener(sock, PROTOCOL_BY_NAME.get(name, DEFAULT_PROTOCOL), address, inherited=True)


def _verify_listening(sock: _socket.socket, label: str) -> None:
    if sock.family not in (_socket.AF_INET, _socket.AF_INET6, _socket.AF_UNIX):
        raise ActivationError(f"{label} is an {_family_name(sock.family)} socket, not IP or UNIX")
    if sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_TYPE) != _socket.SOCK_STREAM:
        raise ActivationError(
            f"{label} is not a stream socket (use ListenStream=)", errno.ESOCKTNOSUPPORT
        )
    if not sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ACCEPTCONN):
        raise ActivationError(f"{label} is not listening (Accept=yes is not supported)")


def _family_name(family: int) -> str:
    import socket  # the error path only: its enums cost start-up time

    try:
        return socket.AddressFamily(family).name
    except ValueError:
        return f"address family {family}"


# --- addresses -------------------------------------------------------------------------


def parse_address(text: str) -> Address:
    """Parse one --http-socket/--socket value. Raises ActivationError for a bad one."""
    if "/" in text or text.endswith(".sock"):
        return Address(_socket.AF_UNIX, os.path.abspath(text), text)
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65_535:
        raise ActivationError(f"bad socket address {text!r}: expected HOST:PORT or a path")
    port = int(port_text)
    if host.startswith("[") and host.endswith("]"):
        return _resolve(host[1:-1], port, text, _socket.AF_INET6)
    if ":" in host:
        raise ActivationError(f"bad socket address {text!r}: write IPv6 as [ADDR]:PORT")
    return _resolve(host or "0.0.0.0", port, text, _socket.AF_UNSPEC)


def _resolve(host: str, port: int, text: str, family: int) -> Address:
    try:
        infos = _socket.getaddrinfo(host, port, family=family, type=_socket.SOCK_STREAM)
    except _socket.gaierror as exc:
        raise ActivationError(
            f"cannot resolve socket address {text!r}: {exc.strerror}", errno.EADDRNOTAVAIL
        ) from None
    family, _, _, _, sockaddr = infos[0]
    return Address(family, (str(sockaddr[0]), port), text)


def _address_key(address: Address) -> tuple[Any, ...]:
    if isinstance(address.sockaddr, str):
        return ("unix", address.sockaddr)
    if address.sockaddr[1] == 0:
        return ("ephemeral", address.text)  # port 0 never matches an inherited socket
    return _sockname_key(address.sockaddr)


def _sockname_key(sockname: Any) -> tuple[Any, ...]:
    """A comparable form of a socket address: packed IP (scope dropped) and port."""
    if isinstance(sockname, str | bytes):
        return ("unix", sockname)
    host, port = str(sockname[0]).partition("%")[0], sockname[1]
    family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
    return (family, _socket.inet_pton(family, host), port)


def _format_sockname(sockname: Any) -> str:
    if isinstance(sockname, bytes):
        return "@" + sockname.lstrip(b"\0").decode(errors="replace")
    if isinstance(sockname, str):
        return "@" + sockname[1:] if sockname.startswith("\0") else sockname
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- binding ---------------------------------------------------------------------------


def _bind(address: Address, protocol: str, config: Config) -> Listener:
    sock = _socket.socket(address.family, _socket.SOCK_STREAM)
    try:
        _bind_and_listen(sock, address, config)
    except OSError as exc:
        sock.close()
        raise ActivationError(
            f"cannot bind {protocol} socket {address.text}: {exc.strerror}",
            exc.errno or errno.EINVAL,
        ) from None
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    shown = address.sockaddr if address.is_unix else _format_sockname(sock.getsockname())
    return Listener(sock, protocol, str(shown), inherited=False)


def _bind_and_listen(sock: _socket.socket, address: Address, config: Config) -> None:
    if address.is_unix:
        assert isinstance(address.sockaddr, str)
        # 3 or 4 octal digits: config/load.py refused anything else before we got here
        mode = int(config.chmod_socket, 8) if config.chmod_socket else None
        _remove_stale_unix_socket(address.sockaddr)
        sock.bind(address.sockaddr)
        if mode is not None:
            os.chmod(address.sockaddr, mode)
    else:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        if address.family == _socket.AF_INET6:
            # [::]:PORT and :PORT may both be configured; keep IPv6 sockets IPv6-only.
            sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
        # Hand a connection to accept() only once its first bytes arrived: no worker
        # accepts, finds nothing to read and parks it (the socket unit's DeferAcceptSec=).
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_DEFER_ACCEPT, 1)
        sock.bind(address.sockaddr)
    sock.listen(config.listen or kernel_backlog_max())


def _remove_stale_unix_socket(path: str) -> None:
    """Unlink `path` if it is a socket file nobody answers on; refuse anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(errno.EEXIST, "exists and is not a socket", path)
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)  # never wait on a live server: its backlog may be full
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)  # left behind by a process that is gone
        return
    except (BlockingIOError, TimeoutError):
        pass  # EAGAIN: a live server whose backlog is full (control/bind.py decides the same)
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "another process is listening on it")


def kernel_backlog_max() -> int:
    """net.core.somaxconn: what listen() is capped to anyway."""
    try:
        with open(SOMAXCONN_PATH, encoding="ascii") as file:
            return int(file.read())
    except (OSError, ValueError):
        return _socket.SOMAXCONN
