"""Logging to stderr, in the form journald understands when stderr is the journal.

setup_logging() installs one handler on the root logger, so the application's
own log records come out in the same shape as sockactd's. Each line carries the
process role, its pid and the worker generation:

    2026-11-27 12:00:00 INFO [master 1234 g1] message      (a terminal, a file)
    <6>INFO [worker 1240 g2] message                       (journald: it adds the time)

Role and generation live in module state read by a filter at format time, so
set_role()/set_generation() after fork change every later line. Nothing here
may be called from a signal handler (logging takes locks); this module never
opens files and needs no reopen: stderr is whatever systemd or the shell gave.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Final

__all__ = [
    "ACCESS_LOGGER",
    "JournalPriorityFormatter",
    "set_generation",
    "set_role",
    "setup_logging",
    "use_journal_prefix",
]

ACCESS_LOGGER: Final = "sockactd.access"

_PLAIN_FORMAT: Final = (
    "%(asctime)s %(levelname)s [%(role)s %(process)d g%(generation)d] %(message)s"
)
_JOURNAL_FORMAT: Final = "%(levelname)s [%(role)s %(process)d g%(generation)d] %(message)s"
_DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class _Context:
    """What every line says about the process writing it."""

    role = "master"
    generation = 0


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.role = _Context.role
        record.generation = _Context.generation
        return True


class JournalPriorityFormatter(logging.Formatter):
    """Prefix '<N>' (sd-daemon(3)) so journald keeps the level when stderr is the journal."""

    _PRIORITY: Final = {
        logging.CRITICAL: 2,
        logging.ERROR: 3,
        logging.WARNING: 4,
        logging.INFO: 6,
        logging.DEBUG: 7,
    }

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{self._PRIORITY.get(record.levelno, 6)}>"
        # journald splits on newlines: prefix each line of a traceback so none becomes INFO
        return "\n".join(prefix + line for line in text.split("\n"))


_handler: logging.Handler | None = None


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


def setup_logging(level: str, *, role: str) -> None:
    """Send every log record at `level` or above to stderr. Safe to call again."""
    global _handler
    set_role(role)
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if use_journal_prefix():
        handler.setFormatter(JournalPriorityFormatter(_JOURNAL_FORMAT))
    else:
        handler.setFormatter(logging.Formatter(_PLAIN_FORMAT, _DATE_FORMAT))
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level, logging.INFO))
    _handler = handler


def set_role(role: str) -> None:
    """Name the process in later lines: "master", "worker", ... (called after fork)."""
    _Context.role = role


def set_generation(generation: int) -> None:
    """The worker generation shown as g<N> in later lines."""
    _Context.generation = generation
