"""Answers with its worker's pid, then the names of the modules that worker has loaded."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    body = "\n".join([f"pid:{os.getpid()}", *sorted(sys.modules)]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
