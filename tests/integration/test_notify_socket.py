"""sd_notify through both backends to a real AF_UNIX datagram socket the test binds.

Also: a forked worker that calls close_in_child() can no longer notify, and a
process started by the real `systemd-socket-activate` takes its socket, serves the
first connection and reports READY=1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sockactd.systemd.notify import Backend, Notifier
from tests.support import child_environ, port_open, require, wait_until


class NotifyListener:
    """The systemd side: an AF_UNIX/DGRAM socket bound at a path or an abstract name."""

    def __init__(self, address: str) -> None:
        self.address = address  # NOTIFY_SOCKET form: "/path" or "@name"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)

    def receive(self, timeout: float = 5.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(65536).decode()

    def pending(self) -> list[str]:
        self.sock.setblocking(False)
        messages = []
        while True:
            try:
                messages.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                return messages

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 107 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sockactd-") as name:
        yield Path(name)


@pytest.fixture(params=["path", "abstract"])
def listener(
    request: pytest.FixtureRequest, short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[NotifyListener]:
    if request.param == "path":
        address = str(short_dir / "notify")
    else:
        address = f"@sockactd-test-notify-{os.getpid()}-{time.monotonic_ns()}"
    receiver = NotifyListener(address)
    # Both backends read the process environment (libsystemd on every call).
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    yield receiver
    receiver.close()


def monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


CALLS: list[tuple[str, Callable[[Notifier], None], list[str]]] = [
    ("ready", lambda n: n.ready("serving 2/2"), ["READY=1", "STATUS=serving 2/2"]),
    ("stopping", lambda n: n.stopping("stopping"), ["STOPPING=1", "STATUS=stopping"]),
    ("status", lambda n: n.status("chain reload: 1/2"), ["STATUS=chain reload: 1/2"]),
    ("watchdog", lambda n: n.watchdog(), ["WATCHDOG=1"]),
    ("extend", lambda n: n.extend_timeout(2.5), ["EXTEND_TIMEOUT_USEC=2500000"]),
    ("fatal", lambda n: n.fatal("cannot bind", 98), ["STATUS=cannot bind", "ERRNO=98"]),
    ("one-line", lambda n: n.status("a\nb\r\nc"), ["STATUS=a b  c"]),
]


@pytest.mark.parametrize("backend", Backend.members())
@pytest.mark.parametrize(("call", "expected"), [c[1:] for c in CALLS], ids=[c[0] for c in CALLS])
def test_each_call_is_one_datagram_with_all_its_fields(
    listener: NotifyListener,
    backend: Backend,
    call: Callable[[Notifier], None],
    expected: list[str],
) -> None:
    notifier = Notifier.from_environ(os.environ, backend=backend)
    assert notifier.backend is backend
    call(notifier)
    assert listener.receive().split("\n") == expected
    assert listener.pending() == []
    notifier.close()


@pytest.mark.parametrize("backend", Backend.members())
def test_reloading_carries_monotonic_usec(listener: NotifyListener, backend: Backend) -> None:
    notifier = Notifier.from_environ(os.environ, backend=backend)
    before = monotonic_usec()
    notifier.reloading("chain reload to generation 2")
    after = monotonic_usec()
    reloading, stamp, status = listener.receive().split("\n")
    assert reloading == "RELOADING=1"
    assert stamp.startswith("MONOTONIC_USEC=")
    assert before <= int(stamp.removeprefix("MONOTONIC_USEC=")) <= after
    assert status == "STATUS=chain reload to generation 2"
    notifier.close()


@pytest.mark.parametrize("backend", Backend.members())
def test_send_failure_is_logged_once_and_never_raises(
    short_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    backend: Backend,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(short_dir / "nobody-listens"))
    notifier = Notifier.from_environ(os.environ, backend=backend)
    for _ in range(3):
        notifier.status("lost")
        notifier.watchdog()
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "nobody-listens" in warnings[0].getMessage()
    # the receiver appears: notifications flow again (sdnotify reconnects)
    receiver = NotifyListener(str(short_dir / "nobody-listens"))
    try:
        notifier.watchdog()
        assert receiver.receive() == "WATCHDOG=1"
    finally:
        receiver.close()
        notifier.close()


@pytest.mark.parametrize("backend", Backend.members())
def test_forked_worker_cannot_notify_after_close_in_child(
    listener: NotifyListener, backend: Backend
) -> None:
    notifier = Notifier.from_environ(os.environ, backend=backend)
    notifier.status("before fork")  # sdnotify: the connected socket now exists
    assert listener.receive() == "STATUS=before fork"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            notifier.close_in_child()
            notifier.status("from the worker")
            child = Notifier.from_environ(os.environ, backend=backend)
            child.status("from a new notifier in the worker")
            code = 0 if "NOTIFY_SOCKET" not in os.environ and not child.enabled else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    notifier.status("master still notifies")
    assert listener.receive() == "STATUS=master still notifies"
    assert listener.pending() == []
    notifier.close()


ACTIVATED_APP = textwrap.dedent(
    """
    from sockactd.config.model import Config
    from sockactd.sockets import close_listeners, open_listeners
    from sockactd.systemd.activation import take_inherited_fds
    from sockactd.systemd.notify import Notifier
    import os, selectors, socket

    listeners = open_listeners(Config(), take_inherited_fds())
    notifier = Notifier.from_environ()
    (listener,) = listeners
    notifier.ready(f"{listener.protocol} {listener.address} listen={'LISTEN_FDS' in os.environ}")
    with selectors.DefaultSelector() as selector:
        selector.register(listener.sock, selectors.EVENT_READ)
        selector.select(10)
    # Listener.sock is a bare _socket.socket (no enum-converting accept wrapper)
    conn = socket.socket(fileno=listener.sock._accept()[0])
    conn.sendall(b"hello from an activated process")
    conn.close()
    notifier.stopping("bye")
    close_listeners(listeners, unlink=True)
    """
)


def test_under_systemd_socket_activate(
    listener: NotifyListener, free_port: int, short_dir: Path
) -> None:
    tool = shutil.which("systemd-socket-activate")
    require(tool is not None, "needs systemd-socket-activate (Debian package systemd)")
    assert tool is not None
    script = short_dir / "app.py"
    script.write_text(ACTIVATED_APP)
    argv = [tool, "-l", f"127.0.0.1:{free_port}", "--fdname=http",
            "-E", f"NOTIFY_SOCKET={listener.address}", sys.executable, str(script)]  # fmt: skip
    with subprocess.Popen(argv, env=child_environ(), stderr=subprocess.PIPE) as proc:
        try:
            reply = first_reply(free_port, deadline=time.monotonic() + 20)
            assert reply == b"hello from an activated process"
            assert listener.receive(10).split("\n") == [
                "READY=1",
                f"STATUS=http fd 3 (http) 127.0.0.1:{free_port} listen=False",
            ]
            assert listener.receive(10) == "STOPPING=1\nSTATUS=bye"
            assert proc.wait(timeout=10) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()


def first_reply(port: int, deadline: float) -> bytes:
    """Connect (this launches the service) and read until the server closes."""
    # systemd-socket-activate binds the port shortly after it starts
    wait_until(lambda: port_open(port), max(deadline - time.monotonic(), 0.1), "the port")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        chunks = []
        while chunk := conn.recv(4096):
            chunks.append(chunk)
        return b"".join(chunks)
