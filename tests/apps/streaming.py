"""Bodies of unknown length: a generator (?n=PIECES), and the legacy write() callable (/write)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["app"]


def _pieces(n: int) -> Iterator[bytes]:
    yield b""  # PEP 3333: an empty first piece must not send the head yet
    for i in range(n):
        yield b"piece %d\n" % i


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = environ.get("QUERY_STRING", "")
    n = int(query.partition("n=")[2] or 3)
    if environ["PATH_INFO"] == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"then returned"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _pieces(n)
