"""Hello world: the benchmark app (a one-element list, so the length is known)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["app"]

_BODY = b"Hello, world!\n"
_HEADERS = [("Content-Type", "text/plain")]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", list(_HEADERS))
    return [_BODY]
