"""A test site: JSON with pid, generation and version; /sleep?SECONDS; /env; /getenv?KEY; /crash.

Reload tests copy this file into a temporary directory and rewrite VERSION (or
break it) to play a deploy.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

VERSION = "v1"
IMPORT_DELAY = 0.0
time.sleep(IMPORT_DELAY)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
    elif path == "/crash":
        os._exit(13)
    elif path == "/env":
        keys = [k for k in os.environ if k.startswith(("LISTEN_", "NOTIFY_", "WATCHDOG_"))]
        return _json(start_response, {"master_only": keys})
    elif path == "/getenv":
        return _json(start_response, {"value": os.environ.get(environ.get("QUERY_STRING", ""))})
    return _json(
        start_response,
        {
            "pid": os.getpid(),
            "generation": int(os.environ.get("SOCKACTD_GENERATION", "0")),
            "version": VERSION,
        },
    )


def _json(start_response: Callable[..., Any], data: dict[str, Any]) -> list[bytes]:
    body = json.dumps(data).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
