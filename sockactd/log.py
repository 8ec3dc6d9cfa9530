"""Logging to stderr, in the form journald understands when stderr is the journal.

setup_logging() gives the root logger one handler (logfmt.py), so the
application's own records come out in the same shape as sockactd's, each line
naming the process role, its pid and the worker generation.

The standard `logging` package costs more start-up time than the whole request
path, and under socket activation a client waits while we start. So sockactd's
modules log through `get_logger()`, which imports `logging` only when a record
at an enabled level is written, and setup_logging() configures `logging` at
the moment anything -- sockactd or the application -- first imports it (a
meta-path hook), so the application sees a configured root logger exactly as
if it had been set up eagerly. Nothing here may be called from a signal
handler (logging takes locks); stderr is whatever systemd or the shell gave.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    import logging
    from collections.abc import Mapping, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

__all__ = [
    "ACCESS_LOGGER",
    "Logger",
    "get_logger",
    "set_generation",
    "set_role",
    "setup_logging",
    "use_journal_prefix",
    "write_direct",
]

ACCESS_LOGGER = "sockactd.access"
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
_LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR}


class _Context:
    """What every line says about the process writing it."""

    role = "master"
    generation = 0
    level = INFO  # records below this are dropped without importing logging
    journal = False
    pending = False  # setup_logging() ran before logging was imported


context = _Context()


def setup_logging(level: str, *, role: str) -> None:
    """Send every record at `level` or above to stderr. Safe to call again."""
    context.role = role
    context.level = _LEVELS.get(level, INFO)
    context.journal = use_journal_prefix()
    if "logging" in sys.modules:
        _configure()
    elif not context.pending:
        context.pending = True
        sys.meta_path.insert(0, _ConfigureOnImport())


def set_role(role: str) -> None:
    """Name the process in later lines: "master", "worker", ... (called after fork)."""
    context.role = role


def set_generation(generation: int) -> None:
    """The worker generation shown as g<N> in later lines."""
    context.generation = generation


def use_journal_prefix(environ: Mapping[str, str] | None = None) -> bool:
    """True when fd 2 is the very stream systemd connected to the journal.

    JOURNAL_STREAM is compared with fstat(2) so a variable inherited from a
    parent whose stderr went to the journal is not trusted for ours.
    """
    dev_ino = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    if not dev_ino:
        return False
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return dev_ino == f"{st.st_dev}:{st.st_ino}"


def _configure() -> None:
    from sockactd import logfmt

    logfmt.install(context.level, journal=context.journal, context=context)
    context.pending = False


def write_direct(level: int, text: str) -> None:
    """One line straight to fd 2, taking no lock and opening nothing: for when `logging`
    cannot be imported (no fd left to open its files) or must not be waited for."""
    name = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR"}.get(level, "CRITICAL")
    prefix = f"<{(7, 6, 4, 3, 2)[min(4, level // 10 - 1)]}>" if context.journal else ""
    line = f"{prefix}{name} [{context.role} {os.getpid()} g{context.generation}] {text}\n"
    try:
        os.write(2, line.encode(errors="replace"))
    except OSError:
        pass


class _ConfigureOnImport:
    """Meta-path finder: whoever imports `logging` first gets it configured."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        from importlib.machinery import PathFinder  # only now: it is not free to import

        spec = PathFinder.find_spec(name, path)
        loader: Any = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec  # not a plain source package: configure on our next record instead
        exec_module = loader.exec_module

        def exec_then_configure(module: ModuleType) -> None:
            exec_module(module)
            try:
                _configure()
            except Exception as exc:  # never turn our set-up into the app's ImportError
                print(f"sockactd: cannot set up logging: {exc!r}", file=sys.stderr)

        loader.exec_module = exec_then_configure
        return spec


class Logger:
    """The part of logging.Logger sockactd uses, importing `logging` on first real use."""

    __slots__ = ("_name", "_real")

    def __init__(self, name: str) -> None:
        self._name = name
        self._real: logging.Logger | None = None

    def _logger(self, level: int) -> logging.Logger | None:
        real = self._real
        if real is None:
            if level < context.level and "logging" not in sys.modules:
                return None
            try:
                import logging

                if context.pending:
                    _configure()
            except (ImportError, OSError):  # e.g. no fd left to open its source files
                return None
            real = self._real = logging.getLogger(self._name)
        return real

    def log(self, level: int, msg: str, *args: object, **kwargs: Any) -> None:
        real = self._logger(level)
        if real is not None:
            real.log(level, msg, *args, **kwargs)
        elif level >= context.level:
            write_direct(level, msg % args if args else msg)

    def debug(self, msg: str, *args: object, **kwargs: Any) -> None:
        self.log(DEBUG, msg, *args, **kwargs)

    def info(self, msg: str, *args: object, **kwargs: Any) -> None:
        self.log(INFO, msg, *args, **kwargs)

    def warning(self, msg: str, *args: object, **kwargs: Any) -> None:
        self.log(WARNING, msg, *args, **kwargs)

    def error(self, msg: str, *args: object, **kwargs: Any) -> None:
        self.log(ERROR, msg, *args, **kwargs)

    def critical(self, msg: str, *args: object, **kwargs: Any) -> None:
        self.log(CRITICAL, msg, *args, **kwargs)

    def exception(self, msg: str, *args: object, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        self.log(ERROR, msg, *args, **kwargs)

    def isEnabledFor(self, level: int) -> bool:
        real = self._logger(level)
        return real is not None and real.isEnabledFor(level)


def get_logger(name: str) -> Logger:
    return Logger(name)
