"""An app that leaks a known amount per request, for reload-on-rss tests.

Every request keeps LEAK_MIB MiB (written, so resident) for the life of the
process and answers its pid, how many requests this process served and its
resident memory after the leak, as JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["LEAK", "app"]

LEAK = int(os.environ.get("LEAK_MIB", "2")) * 1024 * 1024
_kept: list[bytes] = []
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    _kept.append(os.urandom(16) * (LEAK // 16))
    body = json.dumps({"pid": os.getpid(), "count": len(_kept), "rss": _rss()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
