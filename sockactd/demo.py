"""Demo WSGI application: answers with the worker's PID and generation.

`sockactd sockactd.demo:app` serves it; reload tests and the README use it to
show which worker and which generation answered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["app"]

VERSION = os.environ.get("SOCKACTD_DEMO_VERSION", "1")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = (
        json.dumps(
            {
                "app": "sockactd demo",
                "pid": os.getpid(),
                "generation": int(os.environ.get("SOCKACTD_GENERATION", "0")),
                "version": VERSION,
                "path": environ.get("PATH_INFO", ""),
            }
        ).encode()
        + b"\n"
    )
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
