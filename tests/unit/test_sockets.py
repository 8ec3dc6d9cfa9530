"""sockets.py: wrapping systemd's sockets, binding our own, and closing them.

Real sockets on 127.0.0.1 / ::1 / short UNIX paths. An "inherited" socket is one the
test creates and detaches, exactly what systemd hands over (a bare listening fd).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sockactd.config.load import load_config
from sockactd.config.model import Config
from sockactd.errors import ActivationError, ConfigError
from sockactd.sockets import (
    NO_SOCKETS,
    Listener,
    close_listeners,
    kernel_backlog_max,
    open_listeners,
    parse_address,
)
from sockactd.systemd.activation import InheritedFd
from tests.support import require


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 107 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sockactd-") as name:
        yield Path(name)


@pytest.fixture
def opened() -> Iterator[list[Listener]]:
    """Listeners a test opened; closed (and unlinked) afterwards whatever happens."""
    listeners: list[Listener] = []
    yield listeners
    close_listeners(listeners, unlink=True)


def listening_fd(
    family: socket.AddressFamily = socket.AF_INET,
    address: str | tuple[str, int] = ("127.0.0.1", 0),
    backlog: int = 16,
    kind: socket.SocketKind = socket.SOCK_STREAM,
    listen: bool = True,
) -> InheritedFd:
    """A bare fd like the ones systemd passes; the caller's InheritedFd owns it."""
    sock = socket.socket(family, kind)
    sock.bind(address)
    if listen:
        sock.listen(backlog)
    return InheritedFd(sock.detach(), "http")


def named(fd: InheritedFd, name: str) -> InheritedFd:
    return InheritedFd(fd.fd, name)


def ss_backlog(port: int) -> int:
    """The accept-queue limit the kernel reports for a listening TCP port (ss Send-Q)."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[2])


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "family", "sockaddr"),
    [
        ("127.0.0.1:8000", socket.AF_INET, ("127.0.0.1", 8000)),
        ("[::1]:8000", socket.AF_INET6, ("::1", 8000)),
        ("[::]:80", socket.AF_INET6, ("::", 80)),
        (":8000", socket.AF_INET, ("0.0.0.0", 8000)),
        ("127.0.0.1:0", socket.AF_INET, ("127.0.0.1", 0)),
        ("/run/sockactd/app.sock", socket.AF_UNIX, "/run/sockactd/app.sock"),
        ("/run/sockactd/http", socket.AF_UNIX, "/run/sockactd/http"),
        ("app.sock", socket.AF_UNIX, os.path.abspath("app.sock")),
    ],
)
def test_parse_address(text: str, family: socket.AddressFamily, sockaddr: object) -> None:
    address = parse_address(text)
    assert (address.family, address.sockaddr, address.text) == (family, sockaddr, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8000", "expected HOST:PORT"),
        ("127.0.0.1:", "expected HOST:PORT"),
        ("127.0.0.1:99999", "expected HOST:PORT"),
        ("127.0.0.1:http", "expected HOST:PORT"),
        ("::1:8000", "write IPv6 as"),
        ("no-such-host.invalid:80", "cannot resolve"),
    ],
)
def test_bad_addresses_are_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(ActivationError, match=message) as caught:
        parse_address(text)
    assert text in str(caught.value)


# --- inherited sockets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "protocol"),
    [("http", "http"), ("uwsgi", "uwsgi"), ("unknown", "http"), ("api", "http")],
)
def test_inherited_socket_is_wrapped_with_protocol_from_its_name(
    opened: list[Listener], name: str, protocol: str
) -> None:
    inherited = named(listening_fd(), name)
    opened.extend(open_listeners(Config(), [inherited]))
    (listener,) = opened
    port = listener.sock.getsockname()[1]
    assert listener.sock.fileno() == inherited.fd  # wrapped, not duplicated
    assert (listener.protocol, listener.inherited) == (protocol, True)
    assert listener.address == f"fd {inherited.fd} ({name}) 127.0.0.1:{port}"
    assert listener.sock.getblocking() is False
    assert os.get_inheritable(listener.sock.fileno()) is False
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_inherited_socket_keeps_its_backlog(opened: list[Listener]) -> None:
    """listen() is never called again on systemd's socket (it would override Backlog=)."""
    require(shutil.which("ss") is not None, "needs ss (Debian package iproute2)")
    opened.extend(open_listeners(Config(listen=100), [listening_fd(backlog=7)]))
    assert ss_backlog(opened[0].sock.getsockname()[1]) == 7


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda: listening_fd(listen=False), "not listening", id="not-listening"),
        pytest.param(
            lambda: listening_fd(kind=socket.SOCK_DGRAM, listen=False),
            "not a stream socket",
            id="datagram",
        ),
    ],
)
def test_unusable_inherited_socket_is_refused(
    make: Callable[[], InheritedFd], message: str
) -> None:
    inherited = make()
    with pytest.raises(ActivationError, match=message) as caught:
        open_listeners(Config(http_socket=["127.0.0.1:0"]), [inherited])
    assert f"fd {inherited.fd}" in str(caught.value)
    with pytest.raises(OSError):  # the refused fd was closed along the way
        os.fstat(inherited.fd)


def test_inherited_fd_that_is_not_a_socket_is_refused() -> None:
    read_fd, write_fd = os.pipe()
    try:
        with pytest.raises(ActivationError, match=f"fd {read_fd} .* not a socket") as caught:
            open_listeners(Config(), [InheritedFd(read_fd, "http")])
        assert caught.value.errno == errno.ENOTSOCK
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_address_already_passed_in_is_not_bound_again(
    opened: list[Listener], short_dir: Path
) -> None:
    tcp = listening_fd()
    path = str(short_dir / "app.sock")
    unix = named(listening_fd(socket.AF_UNIX, path), "uwsgi")
    with socket.socket(fileno=os.dup(tcp.fd)) as probe:
        port = probe.getsockname()[1]
    config = Config(http_socket=[f"127.0.0.1:{port}", "127.0.0.1:0"], socket=[path])
    opened.extend(open_listeners(config, [tcp, unix]))
    assert [(item.inherited, item.protocol) for item in opened] == [
        (True, "http"),
        (True, "uwsgi"),
        (False, "http"),  # only 127.0.0.1:0 was bound here
    ]


# --- sockets bound here ---------------------------------------------------------------------


def test_binds_tcp_with_kernel_max_backlog(opened: list[Listener]) -> None:
    opened.extend(open_listeners(Config(http_socket=["127.0.0.1:0"]), []))
    (listener,) = opened
    port = listener.sock.getsockname()[1]
    assert (listener.protocol, listener.inherited) == ("http", False)
    assert listener.address == f"127.0.0.1:{port}"
    assert listener.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
    assert listener.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    assert listener.sock.getblocking() is False
    assert os.get_inheritable(listener.sock.fileno()) is False
    if shutil.which("ss"):
        assert ss_backlog(port) == kernel_backlog_max()


def test_listen_setting_sets_backlog(opened: list[Listener]) -> None:
    require(shutil.which("ss") is not None, "needs ss (Debian package iproute2)")
    opened.extend(open_listeners(Config(http_socket=["127.0.0.1:0"], listen=5), []))
    assert ss_backlog(opened[0].sock.getsockname()[1]) == 5


def test_binds_ipv6(opened: list[Listener]) -> None:
    require(socket.has_ipv6 and os.path.exists("/proc/net/if_inet6"), "needs IPv6 on ::1")
    opened.extend(open_listeners(Config(socket=["[::1]:0"]), []))
    (listener,) = opened
    port = listener.sock.getsockname()[1]
    assert (listener.protocol, listener.address) == ("uwsgi", f"[::1]:{port}")
    assert listener.sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    with socket.create_connection(("::1", port), timeout=5):
        pass


def test_unix_socket_mode_and_unlink(short_dir: Path) -> None:
    path = short_dir / "app.sock"
    listeners = open_listeners(Config(socket=[str(path)], chmod_socket="660"), [])
    (listener,) = listeners
    assert (listener.protocol, listener.address, listener.inherited) == ("uwsgi", str(path), False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))
    close_listeners(listeners, unlink=True)
    assert not path.exists()


def test_close_without_unlink_keeps_the_file(short_dir: Path) -> None:
    path = short_dir / "app.sock"
    close_listeners(open_listeners(Config(http_socket=[str(path)]), []), unlink=False)
    assert stat.S_ISSOCK(path.lstat().st_mode)


def test_inherited_unix_socket_is_never_unlinked(short_dir: Path) -> None:
    path = short_dir / "systemd.sock"
    listeners = open_listeners(Config(), [listening_fd(socket.AF_UNIX, str(path))])
    close_listeners(listeners, unlink=True)
    assert stat.S_ISSOCK(path.lstat().st_mode)


def test_stale_unix_socket_file_is_replaced(opened: list[Listener], short_dir: Path) -> None:
    path = short_dir / "app.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # closed without unlink: nobody answers on it any more
    opened.extend(open_listeners(Config(http_socket=[str(path)]), []))
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))


def test_live_unix_socket_is_left_alone(short_dir: Path) -> None:
    path = short_dir / "app.sock"
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(ActivationError, match=f"{path}: another process") as caught:
            open_listeners(Config(http_socket=[str(path)]), [])
        assert caught.value.errno == errno.EADDRINUSE
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))  # still the live one's


def test_live_unix_socket_with_a_full_backlog_is_left_alone_at_once(short_dir: Path) -> None:
    # The probe that tells a stale socket file from a live one had no timeout: a live
    # server whose backlog was full held open_listeners (the start-up) in connect().
    path = short_dir / "app.sock"
    with socket.socket(socket.AF_UNIX) as live, contextlib.ExitStack() as queued:
        live.bind(str(path))
        live.listen(0)
        for _ in range(64):  # fill its accept queue (listen(0) holds one or two)
            client = queued.enter_context(socket.socket(socket.AF_UNIX))
            client.setblocking(False)
            try:
                client.connect(str(path))
            except BlockingIOError:
                break
        else:
            pytest.fail("the accept queue never filled")
        raised: list[BaseException] = []

        def start() -> None:
            try:
                opened = open_listeners(Config(http_socket=[str(path)]), [])
            except BaseException as exc:
                raised.append(exc)
            else:
                close_listeners(opened, unlink=False)

        thread = threading.Thread(target=start, daemon=True)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "open_listeners still waits on the live server"
        assert [getattr(exc, "errno", exc) for exc in raised] == [errno.EADDRINUSE]
        assert stat.S_ISSOCK(path.lstat().st_mode)  # still the live one's


def test_regular_file_in_the_way_is_not_deleted(short_dir: Path) -> None:
    path = short_dir / "app.sock"
    path.write_text("precious")
    with pytest.raises(ActivationError, match="not a socket") as caught:
        open_listeners(Config(socket=[str(path)]), [])
    assert caught.value.errno == errno.EEXIST
    assert path.read_text() == "precious"


def test_bad_chmod_socket_is_refused_before_binding(short_dir: Path) -> None:
    # chmod-socket is parsed once, with the configuration (exit 78): a start reads its
    # configuration first, so a bad mode ends it before open_listeners binds anything.
    path = short_dir / "app.sock"
    with pytest.raises(ConfigError, match=r"chmod-socket.*'9x'"):
        config = load_config(["--socket", str(path), "--chmod-socket", "9x", "app:app"], {})
        open_listeners(config, [])
    assert not path.exists()


def test_address_in_use_names_the_address_and_closes_the_rest(short_dir: Path) -> None:
    path = short_dir / "first.sock"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        with pytest.raises(ActivationError, match=f"cannot bind http socket {taken}") as caught:
            open_listeners(Config(http_socket=[str(path), taken]), [])
    assert caught.value.errno == errno.EADDRINUSE
    assert not path.exists()  # the UNIX socket bound before the failure was closed and unlinked


def test_no_sockets_at_all() -> None:
    with pytest.raises(ActivationError) as caught:
        open_listeners(Config(), [])
    assert str(caught.value) == NO_SOCKETS
    assert "--http-socket" in NO_SOCKETS and "socket activation" in NO_SOCKETS


def test_tcp_sockets_we_bind_defer_accept_until_data(opened: list[Listener]) -> None:
    opened.extend(open_listeners(Config(http_socket=["127.0.0.1:0"], socket=["127.0.0.1:0"]), []))
    for listener in opened:
        assert listener.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) > 0
