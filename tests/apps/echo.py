"""Echo the request body, read as ?how=read|readall|readline|iter|chunks|none says.

The response carries X-Body-Length (bytes the app read) and X-Pid; `none` reads nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["app"]


def _read(stream: Any, how: str) -> bytes:
    if how == "readline":
        lines = []
        while line := stream.readline():
            lines.append(line)
        return b"".join(lines)
    if how == "iter":
        return b"".join(stream)
    if how == "chunks":
        parts = []
        while part := stream.read(7):
            parts.append(part)
        return b"".join(parts)
    if how == "none":
        return b""
    if how == "readall":
        return bytes(stream.read())  # no size: allowed by PEP 3333, refused by wsgiref.validate
    return bytes(stream.read(1 << 30))


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = environ.get("QUERY_STRING", "")
    how = query.partition("how=")[2].partition("&")[0] or "read"
    body = _read(environ["wsgi.input"], how)
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/octet-stream"),
            ("X-Body-Length", str(len(body))),
            ("X-Pid", str(os.getpid())),
        ],
    )
    return [body]
