"""WSGI app for the through-nginx tests: reports what arrived, and misbehaves on request.

/        JSON: method, path, query, X-Odd header, REMOTE_ADDR/PORT, scheme, pid,
         body length and sha256
/big     a BIG-byte octet-stream body (bytes 0..255 repeated)
/slow    creates the file ?mark=PATH if given, then sleeps ?s=SECONDS (at most 30)
         before answering like /
/boom    raises RuntimeError before start_response: the server must answer 500
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

__all__ = ["BIG", "app", "big_body"]

BIG = 5 * 1024 * 1024 + 17


def big_body() -> bytes:
    return bytes(range(256)) * (BIG // 256) + bytes(range(BIG % 256))


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/boom":
        raise RuntimeError("boom, as requested")
    if path == "/big":
        body, kind = big_body(), "application/octet-stream"
    else:
        if path == "/slow":
            _slow(parse_qs(environ.get("QUERY_STRING", "")))
        body, kind = json.dumps(_report(environ)).encode(), "application/json"
    start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]


def _slow(query: dict[str, list[str]]) -> None:
    if "mark" in query:  # lets the test see that the request reached the app
        with open(query["mark"][0], "w"):
            pass
    time.sleep(min(float(query.get("s", ["1"])[0]), 30.0))


def _report(environ: dict[str, Any]) -> dict[str, object]:
    data = _read_body(environ)
    return {
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "query": environ.get("QUERY_STRING"),
        "odd": environ.get("HTTP_X_ODD"),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "remote_port": environ.get("REMOTE_PORT"),
        "scheme": environ.get("wsgi.url_scheme"),
        "pid": os.getpid(),
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def _read_body(environ: dict[str, Any]) -> bytes:
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length:
        data: bytes = stream.read(int(length))
        return data
    return b""
