"""Misbehaving apps: each path breaks a different rule; the server must answer and keep serving.

/before      raises before start_response            -> 500
/after       raises in the body after the first chunk -> connection closed mid-response
/hop         sets a hop-by-hop header                 -> 500
/crlf        header value with CR LF                  -> 500
/status      malformed status                          -> 500
/twice       start_response twice without exc_info     -> 500
/excinfo     error page through start_response(exc_info) -> 503
/nostart     returns a body without start_response      -> 500
/close       ok body whose close() raises               -> body sent, error logged
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["app"]


class _CloseRaises:
    def __iter__(self) -> Iterator[bytes]:
        yield b"closing"

    def close(self) -> None:
        raise RuntimeError("close failed")


def _after(start_response: Callable[..., Any]) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first"
    raise RuntimeError("boom after the head")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    plain = [("Content-Type", "text/plain")]
    if path == "/before":
        raise RuntimeError("boom before start_response")
    if path == "/after":
        return _after(start_response)
    if path == "/hop":
        start_response("200 OK", [*plain, ("Connection", "close")])
    elif path == "/crlf":
        start_response("200 OK", [("X-Bad", "a\r\nInjected: yes")])
    elif path == "/status":
        start_response("OK", plain)
    elif path == "/twice":
        start_response("200 OK", plain)
        start_response("200 OK", plain)
    elif path == "/excinfo":
        start_response("200 OK", plain)
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("503 Service Unavailable", plain, sys.exc_info())
        return [b"sorry"]
    elif path == "/nostart":
        return [b"no start_response"]
    elif path == "/close":
        start_response("200 OK", plain)
        return _CloseRaises()
    start_response("200 OK", plain)
    return [b"fine"]
