"""A worker's own resident memory, read after each request for `reload-on-rss`.

Only imported when `reload-on-rss` is set. /proc/self/statm is opened once and
re-read with pread (one system call, no open/close per request); its second
field is the resident set in pages. This module never decides what to do about
the number: handlers.Context stops accepting, the master starts the replacement.
"""

from __future__ import annotations

import os

__all__ = ["RssLimit"]

MIB = 1024 * 1024


class RssLimit:
    __slots__ = ("_fd", "_page", "limit")

    def __init__(self, limit_mib: int) -> None:
        self.limit = limit_mib * MIB
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)

    def rss(self) -> int:
        """This process's resident set size in bytes, now."""
        return int(os.pread(self._fd, 128, 0).split()[1]) * self._page

    def exceeded(self) -> str:
        """ "" while under the limit, else why this worker stops (for its log and the master)."""
        rss = self.rss()
        if rss <= self.limit:
            return ""
        return f"reload-on-rss: RSS {rss / MIB:.1f} MiB over the {self.limit // MIB} MiB limit"
