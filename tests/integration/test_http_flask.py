"""A real framework end to end: Flask (tests/apps/flask_app.py) under serve() in a child."""

from __future__ import annotations

import http.client
import json
import urllib.parse

import pytest

from tests.integration.serve_child import serving
from tests.support import require

try:
    from tests.apps.flask_app import app as flask_app
except ImportError:  # pragma: no cover - flask is a test dependency
    flask_app = None


@pytest.fixture
def port() -> object:
    require(flask_app is not None, "needs flask (pip install sockactd[test])")
    with serving(flask_app, quiet=True) as served:
        yield served.port


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_index(port: int) -> None:
    assert request(port, "GET", "/")[::2] == (200, b"hello from flask")


def test_json_post(port: int) -> None:
    status, headers, body = request(
        port, "POST", "/json", b'{"a": [1, 2]}', {"Content-Type": "application/json"}
    )
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"received": {"a": [1, 2]}, "path": "/json", "scheme": "http"}


def test_chunked_form_post(port: int) -> None:
    form = urllib.parse.urlencode({"name": "sockactd", "x": "1"}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(
            "POST",
            "/form",
            body=iter([form[:5], form[5:]]),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert json.loads(response.read()) == {"name": "sockactd", "x": "1"}
    finally:
        conn.close()


def test_streaming_response_is_chunked(port: int) -> None:
    _, headers, body = request(port, "GET", "/stream")
    assert headers.get("Transfer-Encoding") == "chunked"
    assert body == b"line 0\nline 1\nline 2\n"


def test_view_error_is_500_and_serving_goes_on(port: int) -> None:
    assert request(port, "GET", "/boom")[0] == 500
    assert request(port, "GET", "/")[0] == 200


def test_utf8_path_round_trips(port: int) -> None:
    status, _, body = request(port, "GET", "/unicode/caf%C3%A9")
    assert status == 200
    data = json.loads(body)
    assert data["name"] == "café"
    assert data["path_info"] == "/unicode/caf\u00c3\u00a9"  # latin-1 view of the UTF-8 bytes
