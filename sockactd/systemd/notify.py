"""Telling systemd what the master is doing (sd_notify(3)).

Each method sends ONE datagram carrying all its fields, so systemd sees e.g.
RELOADING=1 and its MONOTONIC_USEC together (Type=notify-reload needs both).
Everything is a no-op when NOTIFY_SOCKET is unset. A failed send is logged
(warning once, debug afterwards until a send succeeds) and never raises: a lost
status line must not take the server down.

Backends, chosen once when the Notifier is built: libsystemd through
systemd-python when it imports, else sdnotify (pure Python). Both take the
address from the *process* environment (libsystemd reads NOTIFY_SOCKET on
every call), so the master keeps NOTIFY_SOCKET; a forked worker calls
`close_in_child()`, which drops the socket and the variable.

This module never decides *when* to notify; the master does.
"""

from __future__ import annotations

import errno
import os
import time

from sockactd.log import DEBUG, WARNING, get_logger
from sockactd.symbol import Symbol

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, ClassVar, Protocol

    class _Sender(Protocol):
        def send(self, message: str) -> None:
            """Send one datagram; raise OSError on failure."""

        def close(self) -> None: ...


__all__ = ["Backend", "Notifier", "watchdog_interval"]

log = get_logger(__name__)

STATUS_MAX = 4096  # systemd accepts 16 KiB; a status line this long is already a bug


class Backend(Symbol):
    """Which library sends our datagrams."""

    LIBSYSTEMD: ClassVar[Backend]  # systemd.daemon.notify (systemd-python, C extension)
    SDNOTIFY: ClassVar[Backend]  # sdnotify.SystemdNotifier (pure Python)


Backend.LIBSYSTEMD = Backend("LIBSYSTEMD", "libsystemd")
Backend.SDNOTIFY = Backend("SDNOTIFY", "sdnotify")


class _LibsystemdSender:
    def __init__(self) -> None:
        from systemd import daemon  # imported here: a C extension nobody needs before this

        self._notify: Any = daemon.notify

    def send(self, message: str) -> None:
        if not self._notify(message):  # False: libsystemd found no NOTIFY_SOCKET
            raise OSError(errno.ENOENT, "NOTIFY_SOCKET is not set in the process environment")

    def close(self) -> None:
        """libsystemd opens and closes a socket per call: nothing is held."""


class _SdnotifySender:
    """sdnotify connects once at construction; reconnect lazily after a failure."""

    def __init__(self) -> None:
        self._notifier: Any = None

    def send(self, message: str) -> None:
        if self._notifier is None:
            self._notifier = self._connect()
        try:
            self._notifier.notify(message)
        except OSError:
            self.close()  # the next send reconnects (the receiver may come back)
            raise

    def close(self) -> None:
        if self._notifier is not None and self._notifier.socket is not None:
            self._notifier.socket.close()
        self._notifier = None

    @staticmethod
    def _connect() -> Any:
        import sdnotify

        if not os.environ.get("NOTIFY_SOCKET"):
            raise OSError(errno.ENOENT, "NOTIFY_SOCKET is not set in the process environment")
        # debug=True makes sdnotify raise instead of swallowing, so we can log the cause.
        # When connect() fails it drops its socket unclosed; CPython closes it at once,
        # and the ResourceWarning about it says nothing the caller's log will not.
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            return sdnotify.SystemdNotifier(debug=True)


def _pick_backend() -> Backend:
    try:
        import systemd.daemon  # noqa: F401
    except ImportError:
        return Backend.SDNOTIFY
    return Backend.LIBSYSTEMD


def _make_sender(backend: Backend) -> _Sender:
    if backend is Backend.LIBSYSTEMD:
        return _LibsystemdSender()
    return _SdnotifySender()


class Notifier:
    """sd_notify messages from the master; inert when `address` is None."""

    def __init__(self, address: str | None, backend: Backend | None = None) -> None:
        """`address` is NOTIFY_SOCKET ('/path' or '@abstract'); `backend` None picks one."""
        self.address = address
        self.backend: Backend | None = None
        self._sender: _Sender | None = None
        self._warned = False
        if address is None:
            return
        if not address.startswith(("/", "@", "vsock:")):
            log.warning("NOTIFY_SOCKET=%r is not a socket address; not notifying systemd", address)
            return
        self.backend = backend or _pick_backend()
        if self.backend is Backend.SDNOTIFY and address.startswith("vsock:"):
            log.warning("sdnotify cannot reach NOTIFY_SOCKET=%r; not notifying systemd", address)
            self.backend = None
            return
        self._sender = _make_sender(self.backend)

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] = os.environ, backend: Backend | None = None
    ) -> Notifier:
        return cls(environ.get("NOTIFY_SOCKET") or None, backend)

    @property
    def enabled(self) -> bool:
        return self._sender is not None

    def ready(self, status: str) -> None:
        """Start-up or a reload has finished (successfully or not: STATUS= says which)."""
        self._send("READY=1", _status(status))

    def reloading(self, status: str) -> None:
        """A reload begins. MONOTONIC_USEC lets Type=notify-reload match it to its request."""
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send("RELOADING=1", f"MONOTONIC_USEC={now_usec}", _status(status))

    def stopping(self, status: str) -> None:
        self._send("STOPPING=1", _status(status))

    def status(self, text: str) -> None:
        self._send(_status(text))

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> None:
        """Ask for `seconds` more in the current state; must be re-sent before they run out."""
        self._send(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1_000_000))}")

    def fatal(self, status: str, errno: int) -> None:
        """Start-up failed: why (STATUS=) and the errno systemd shows next to it."""
        self._send(_status(status), f"ERRNO={errno}")

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def close_in_child(self) -> None:
        """In a forked worker: drop the backend's socket and NOTIFY_SOCKET itself."""
        self.close()
        os.environ.pop("NOTIFY_SOCKET", None)

    def _send(self, *fields: str) -> None:
        if self._sender is None:
            return
        message = "\n".join(fields)
        try:
            self._sender.send(message)
        except OSError as exc:
            level = DEBUG if self._warned else WARNING
            log.log(level, "cannot notify systemd at %s: %s", self.address, exc)
            self._warned = True
        else:
            self._warned = False


def _status(text: str) -> str:
    # STATUS= is a single line; a newline would start a new (bogus) field.
    line = " ".join(text.split("\n")).replace("\r", " ")
    return f"STATUS={line[:STATUS_MAX]}"


def watchdog_interval(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when not asked for.

    None also when WATCHDOG_PID names another process (the variable was inherited).
    """
    raw_usec = environ.get("WATCHDOG_USEC", "")
    raw_pid = environ.get("WATCHDOG_PID")
    if not (raw_usec.isascii() and raw_usec.isdigit()) or int(raw_usec) == 0:
        if raw_usec:
            log.warning("ignoring WATCHDOG_USEC=%r: not a positive number", raw_usec)
        return None
    if raw_pid is not None and raw_pid != str(os.getpid()):
        return None
    return int(raw_usec) / 2 / 1_000_000
