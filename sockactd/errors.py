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
    "SockactdError",
]


class ExitCode:
    """Exit statuses of sockactd and sockactctl: plain ints, as exit() takes them (symbol.py).

    0 and 1, then sysexits.h values only: `systemctl status` names statuses 2-7 after the
    LSB init-script codes (4 would read NOPERMISSION, 6 NOTCONFIGURED), 64-78 after
    sysexits.h, which is what these mean (the name systemd shows is in the comment).
    """

    OK = 0
    FAILURE = 1
    USAGE = 64  # USAGE: sockactctl's bad command line (sockactd's is a config error, 78)
    CONTROL_FAILED = 65  # DATAERR: sockactctl: the server refused, or the reload aborted
    CONTROL_UNREACHABLE = 69  # UNAVAILABLE: sockactctl: nothing answers on the control socket
    APP_IMPORT_FAILED = 70  # SOFTWARE: a worker (or the master, preloading) could not import it
    CANT_CREATE = 73  # CANTCREAT: migrate-uwsgi: an output file exists (nothing is overwritten)
    WORKER_BOOT_FAILED = 75  # TEMPFAIL: workers never became ready at start-up; a retry may work
    CONFIG_INVALID = 78  # CONFIG: bad setting, file or socket

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


class ControlError(SockactdError):
    """A control-socket request failed; the message is what the user sees."""

    exit_code = ExitCode.CONTROL_FAILED
