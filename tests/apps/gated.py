"""Records the order requests start in, and holds each until the test opens its gate.

?id=NAME appends NAME and a newline to ?log=PATH when the request starts, then
writes the worker's PID to PATH.NAME (a mark the test can wait for); ?gate=PATH then
waits until PATH exists (at most 30 s) before answering NAME.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

__all__ = ["app"]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    name = query.get("id", "")
    if "log" in query:
        with open(query["log"], "a") as log:
            log.write(name + "\n")
        Path(f"{query['log']}.{name}").write_text(str(os.getpid()))
    if "gate" in query:
        gate = Path(query["gate"])
        deadline = time.monotonic() + 30
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [name.encode()]
