"""Serves the file named by $SOCKACTD_TEST_FILE through wsgi.file_wrapper (sendfile path).

/       the whole file (no Content-Length from the app: the server computes it)
/skip   starts 10 bytes into the file
/pipe   a non-file object through the wrapper (iterated, chunked)
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["app"]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    wrapper = environ["wsgi.file_wrapper"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    if environ["PATH_INFO"] == "/pipe":
        return wrapper(io.BytesIO(b"not a real file " * 10), 16)
    handle = open(os.environ["SOCKACTD_TEST_FILE"], "rb")  # noqa: SIM115 (closed by the server)
    if environ["PATH_INFO"] == "/skip":
        handle.seek(10)
    return wrapper(handle)
