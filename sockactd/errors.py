"""Exception hierarchy and exit codes shared by every part of sockactd.

Only cli.py turns these into exit statuses; everything else raises.
"""

from __future__ import annotations

__all__ = [
    "ActivationError",
    "AppImportError",
    "ConfigError",
    "ControlError",
    "ExitCode",
    "IllegalMove",
    "ProtocolError",
    "ReloadRefused",
    "SockactdError",
]


class ExitCode:
    """Exit statuses: plain ints (no enum on the cold-start path: see symbol.py)."""

    OK = 0
    FAILURE = 1
    WORKER_BOOT_FAILED = 3  # workers never became ready at start-up
    APP_IMPORT_FAILED = 4  # a worker (or the master, when preloading) could not import the app
    CONTROL_FAILED = 5  # sockactctl: the server answered with a failure (e.g. reload aborted)
    CONTROL_UNREACHABLE = 6  # sockactctl: no server on the control socket
    CONFIG_INVALID = 78  # EX_CONFIG from sysexits.h

    @classmethod
    def members(cls) -> dict[str, int]:
        """Name -> status, for every exit status (the man page lists them all)."""
        return {name: value for name, value in vars(cls).items() if name.isupper()}


class SockactdError(Exception):
    """Base class: an error sockactd expected and can explain in one line."""

    exit_code: int = ExitCode.FAILURE


class ConfigError(SockactdError):
    """A bad flag, value, or config file. Raised before anything is bound or forked."""

    exit_code = ExitCode.CONFIG_INVALID

    def __init__(self, setting: str | None, message: str) -> None:
        self.setting = setting
        self.message = message
        where = f"setting '{setting}': " if setting else ""
        super().__init__(f"{where}{message}")


class ActivationError(SockactdError):
    """The sockets systemd handed over (or that we were asked to bind) are unusable."""

    exit_code = ExitCode.CONFIG_INVALID

    def __init__(self, message: str, errno: int = 22) -> None:
        self.errno = errno
        super().__init__(message)


class AppImportError(SockactdError):
    """The WSGI application could not be imported; `details` holds the traceback text."""

    exit_code = ExitCode.APP_IMPORT_FAILED

    def __init__(self, target: str, details: str) -> None:
        self.target = target
        self.details = details
        super().__init__(f"cannot import WSGI app {target!r}")


class ProtocolError(SockactdError):
    """Malformed bytes from a client (HTTP or uwsgi). Carries the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


class IllegalMove(SockactdError):
    """The master's phase table has no move for this (phase, event): a bug, never user input."""


class ReloadRefused(SockactdError):
    """A reload this configuration cannot do (e.g. workers mode with a preloaded app)."""


class ControlError(SockactdError):
    """A control-socket request failed; the message is what the user sees."""

    exit_code = ExitCode.CONTROL_FAILED
