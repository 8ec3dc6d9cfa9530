"""What the kernel says about a process, read from /proc by the master.

Read-only and non-blocking (procfs answers from memory). A process that is
gone, or a field the kernel does not offer, gives None: callers report it as
missing, never fail on it.
"""

from __future__ import annotations

import os

__all__ = ["rss"]

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int) -> int | None:
    """Resident set size of `pid` in bytes (statm's second field), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None
