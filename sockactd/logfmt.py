"""The one stderr handler and its line format; imported only once logging is.

    2026-11-27 12:00:00 INFO [master 1234 g1] message      (a terminal, a file)
    <6>INFO [worker 1240 g2] message                       (journald: it adds the time)

Role and generation are read at format time from the context log.py hands to
install(), so set_role()/set_generation() after fork change every later line.
This module never imports log.py: log.py imports it, once logging is wanted.
"""

from __future__ import annotations

import logging
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    class _Context(Protocol):
        role: str
        generation: int


__all__ = ["JournalPriorityFormatter", "install"]

_PLAIN_FORMAT = "%(asctime)s %(levelname)s [%(role)s %(process)d g%(generation)d] %(message)s"
_JOURNAL_FORMAT = "%(levelname)s [%(role)s %(process)d g%(generation)d] %(message)s"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
_PRIORITY = {  # syslog priorities journald reads from the '<N>' prefix
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class _ContextFilter(logging.Filter):
    def __init__(self, context: _Context) -> None:
        super().__init__()
        self._context = context

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = self._context.role
        record.generation = self._context.generation
        return True


class JournalPriorityFormatter(logging.Formatter):
    """Prefix '<N>' (sd-daemon(3)) so journald keeps the level when stderr is the journal."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        # journald splits on newlines: prefix each line of a traceback so none becomes INFO
        return "\n".join(prefix + line for line in text.split("\n"))


_handler: logging.Handler | None = None


def install(level: int, *, journal: bool, context: _Context) -> None:
    """Give the root logger our one stderr handler at `level`, replacing an earlier one.

    `context` is read for each record: its role and generation at that moment.
    """
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(context))
    if journal:
        handler.setFormatter(JournalPriorityFormatter(_JOURNAL_FORMAT))
    else:
        handler.setFormatter(logging.Formatter(_PLAIN_FORMAT, _DATE_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    _handler = handler
