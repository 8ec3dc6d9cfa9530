"""Answers with its worker's pid, whether its garbage collector runs, then its loaded modules."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterable


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    body = "\n".join([f"pid:{os.getpid()}", f"gc:{gc.isenabled()}", *sorted(sys.modules)])
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
