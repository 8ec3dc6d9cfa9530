"""HTTP sent to the uwsgi socket by mistake: an answer and a log line that say so (issue 14)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.integration.server import running


def test_http_on_the_uwsgi_socket_is_told_which_socket_speaks_http(tmp_path: Path) -> None:
    unix = tmp_path / "app.sock"
    args = ["--http-socket", "127.0.0.1:0", "--socket", str(unix), "tests.apps.hello:app"]
    with running(tmp_path, *args) as srv:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(str(unix))
            client.sendall(b"GET /hello HTTP/1.1\r\nHost: example\r\n\r\n")
            reply = b""
            while chunk := client.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.0 400 Bad Request\r\n"), reply
        assert b"speaks the uwsgi protocol" in reply and b"FileDescriptorName=http" in reply
        log = srv.log()
        assert "HTTP request 'GET /hello HTTP/1.1' from a client of this UNIX socket" in log
        assert "from :" not in log  # no empty peer
