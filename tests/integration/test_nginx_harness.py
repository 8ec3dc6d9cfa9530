"""The nginx harness itself, proven against tiny upstreams run in threads of this test.

proxy_pass goes to a wsgiref server; uwsgi_pass goes to a socketserver that parses
requests with sockactd's UwsgiRequestParser. Both answer with a JSON summary of
what arrived, so each test checks what nginx really sent.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from sockactd.protocols.uwsgi import UwsgiRequestParser, environ_from_vars
from tests.integration.nginx import Mode, NginxProcess, nginx_starter, render_uwsgi_params
from tests.support import wait_until

pytestmark = pytest.mark.nginx

BIG = 5 * 1024 * 1024 + 17  # several MB, deliberately not a multiple of any buffer size
ODD_HEADER = "caf\xe9 ~!#$%&'*+^`|{}\"<>?/\\ \t x"


def summary(environ: dict[str, Any], body: bytes) -> tuple[str, bytes]:
    """What both upstreams answer: (content type, payload)."""
    if environ.get("PATH_INFO") == "/big":
        return "application/octet-stream", bytes(range(256)) * (BIG // 256)
    seen = {
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "query": environ.get("QUERY_STRING"),
        "odd": environ.get("HTTP_X_ODD"),
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    return "application/json", json.dumps(seen).encode()


# --- proxy_pass upstream: wsgiref ------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """wsgiref writes every request to stderr; the tests read nginx's access log instead."""


def _wsgi_app(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    kind, payload = summary(environ, environ["wsgi.input"].read(length))
    start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(payload)))])
    return [payload]


@pytest.fixture
def wsgiref_upstream() -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, _wsgi_app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


# --- uwsgi_pass upstream: UwsgiRequestParser ----------------------------------------


class _UwsgiHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(10)
        parser = UwsgiRequestParser(65535)
        head = None
        while head is None:
            data = conn.recv(65536)
            if not data:
                return
            head = parser.feed(data)
        environ = environ_from_vars(head)
        body = _read_body(conn, parser.remainder, int(str(environ.get("CONTENT_LENGTH") or 0)))
        kind, payload = summary(environ, body)
        status = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        conn.sendall(status.encode("latin-1") + payload)


def _read_body(conn: socket.socket, start: bytes, length: int) -> bytes:
    body = bytearray(start)
    while len(body) < length:
        chunk = conn.recv(min(1 << 20, length - len(body)))
        if not chunk:
            break
        body += chunk
    return bytes(body)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def _serve_in_thread(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.fixture
def uwsgi_tcp_upstream() -> Iterator[str]:
    server = _TcpServer(("127.0.0.1", 0), _UwsgiHandler)
    for _ in _serve_in_thread(server):
        yield f"127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def uwsgi_unix_upstream(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "up.sock"
    assert len(str(path)) < 100, "UNIX socket path too long for sun_path"
    server = _UnixServer(str(path), _UwsgiHandler)
    for _ in _serve_in_thread(server):
        yield f"unix:{path}"


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[Callable[..., NginxProcess]]:
    with nginx_starter(tmp_path) as start:
        yield start


# --- a client ------------------------------------------------------------------------


def send(
    nginx: NginxProcess,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def upstream_address(request: pytest.FixtureRequest, fixture_name: str) -> str:
    value: str = request.getfixturevalue(fixture_name)
    return value


CASES = [
    pytest.param(Mode.HTTP, "wsgiref_upstream", id="proxy_pass-tcp"),
    pytest.param(Mode.UWSGI, "uwsgi_tcp_upstream", id="uwsgi_pass-tcp"),
    pytest.param(Mode.UWSGI, "uwsgi_unix_upstream", id="uwsgi_pass-unix"),
]


@pytest.mark.parametrize(("mode", "upstream"), CASES)
def test_get_with_query_and_odd_header(
    mode: Mode,
    upstream: str,
    start_nginx: Callable[..., NginxProcess],
    request: pytest.FixtureRequest,
) -> None:
    nginx = start_nginx(upstream_address(request, upstream), mode)
    status, body = send(nginx, "GET", "/caf%C3%A9/x?q=1&r=%20", headers={"X-Odd": ODD_HEADER})
    assert status == 200
    seen = json.loads(body)
    assert seen["method"] == "GET"
    # wsgiref decodes PATH_INFO as latin-1 as PEP 3333 says, and so does the uwsgi parser
    assert seen["path"] == "/caf\xc3\xa9/x"
    assert seen["query"] == "q=1&r=%20"
    assert seen["odd"] == ODD_HEADER
    assert seen["length"] == 0


@pytest.mark.parametrize(("mode", "upstream"), CASES)
def test_post_several_megabytes(
    mode: Mode,
    upstream: str,
    start_nginx: Callable[..., NginxProcess],
    request: pytest.FixtureRequest,
) -> None:
    nginx = start_nginx(upstream_address(request, upstream), mode)
    payload = os.urandom(BIG)
    status, body = send(nginx, "POST", "/upload", body=payload)
    assert status == 200, body[:500]
    seen = json.loads(body)
    assert (seen["length"], seen["sha256"]) == (BIG, hashlib.sha256(payload).hexdigest())


@pytest.mark.parametrize(("mode", "upstream"), CASES)
def test_large_response_comes_back_whole(
    mode: Mode,
    upstream: str,
    start_nginx: Callable[..., NginxProcess],
    request: pytest.FixtureRequest,
) -> None:
    nginx = start_nginx(upstream_address(request, upstream), mode)
    status, body = send(nginx, "GET", "/big")
    assert status == 200
    assert body == bytes(range(256)) * (BIG // 256)


def test_stop_leaves_no_process_and_keeps_files_in_prefix(
    uwsgi_tcp_upstream: str, tmp_path: Path
) -> None:
    nginx = NginxProcess(tmp_path / "own", uwsgi_tcp_upstream, "uwsgi")
    with nginx:
        pid = nginx.pid
        assert pid is not None
        assert int(nginx.pid_file.read_text()) == pid
        assert send(nginx, "GET", "/")[0] == 200
    assert nginx.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped by stop(); the PID is no longer ours or anyone's for now
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", nginx.port), timeout=2).close()
    assert nginx.access_lines()[-1].startswith("200 200 GET / ")
    for path in ("/var/", "/run/", "/etc/nginx"):
        assert path not in nginx.conf_path.read_text()


def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as children:
            found += [int(child) for child in children.read().split()]
    return found


@pytest.mark.parametrize("workers", [None, 3])
def test_nginx_runs_one_worker_unless_asked_for_more(
    uwsgi_tcp_upstream: str, tmp_path: Path, workers: int | None
) -> None:
    asked = {} if workers is None else {"workers": workers}
    expected = workers or 1
    with NginxProcess(tmp_path / "n", uwsgi_tcp_upstream, "uwsgi", **asked) as nginx:
        pid = nginx.pid
        assert pid is not None
        wait_until(lambda: len(_children(pid)) >= expected, 10, f"{expected} nginx workers")
        assert send(nginx, "GET", "/")[0] == 200
        assert len(_children(pid)) == expected


def test_uwsgi_params_cover_what_the_parser_needs() -> None:
    names = {line.split()[1] for line in render_uwsgi_params().splitlines()}
    assert {"REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_LENGTH", "HTTP_HOST"} <= names
    assert {"REMOTE_ADDR", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "HTTPS"} <= names


def test_an_unreachable_upstream_gives_502(tmp_path: Path) -> None:
    nginx = NginxProcess(tmp_path / "gone", f"unix:{tmp_path}/nobody.sock", "uwsgi")
    with nginx:
        assert send(nginx, "GET", "/")[0] == 502
