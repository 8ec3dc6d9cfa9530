"""Answer with what the request looked like to the app: its environ keys and the body it read.

The body is JSON: the request line keys, every HTTP_* and CONTENT_* key, and `body`
(the whole wsgi.input, latin-1). A body the client cut short or that broke the
framing raises from wsgi.input, so the server answers that request with its 4xx.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["app"]

_SEEN_KEYS = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "SERVER_PROTOCOL")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    seen = {key: environ[key] for key in _SEEN_KEYS}
    seen.update((k, v) for k, v in environ.items() if k.startswith(("HTTP_", "CONTENT_")))
    seen["body"] = environ["wsgi.input"].read().decode("latin-1")
    body = json.dumps(seen, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
