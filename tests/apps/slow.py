"""Sleeps ?s=SECONDS (at most 30) before answering 'slow done'; ?mark=PATH is created first."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

__all__ = ["app"]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "mark" in query:
        Path(query["mark"][0]).touch()
    time.sleep(min(float(query.get("s", ["0.5"])[0]), 30.0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slow done"]
