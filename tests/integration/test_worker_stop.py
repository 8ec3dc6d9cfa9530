"""How a worker stops: once, and without leaving a connection it was told of unanswered.

serve() in forked children (tests/integration/serve_child.py) or a real master, real
clients on loopback.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from tests.integration.server import running
from tests.support import free_port, wait_until
from tests.unit.protocols.test_uwsgi import packet


def _request(protocol: str, query: str, close: str = "") -> bytes:
    if protocol == "http":
        return f"GET /?{query} HTTP/1.1\r\nHost: t\r\n{close}\r\n".encode()
    pairs = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/"), ("QUERY_STRING", query),
             ("SERVER_PROTOCOL", "HTTP/1.1"), ("SERVER_NAME", "t"), ("SERVER_PORT", "80"),
             ("REMOTE_ADDR", "127.0.0.1")]  # fmt: skip
    return packet(pairs)


def _head_and_body(sock: socket.socket) -> tuple[bytes, bytes]:
    """The whole answer of a connection the worker closes after it (a stopping worker does)."""
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def test_a_worker_stopped_during_a_request_stops_once(tmp_path: Path) -> None:
    """One SIGTERM, one stop: one line in the log, one DRAINING frame to the master.

    The SIGTERM comes while the worker is in the app, with a keep-alive client parked on
    it, so the worker sees it twice: its handler marks the worker closing (what the loop
    acts on after the request), and the wake-up pipe is still readable at the next poll.
    """
    log = tmp_path / "log"
    port = free_port()
    with running(tmp_path, "--http-socket", f"127.0.0.1:{port}", "--processes", "1",
                 "tests.apps.gated:app") as srv:  # fmt: skip
        (worker,) = srv.worker_pids()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as parked,
            socket.create_connection(("127.0.0.1", port), timeout=30) as busy,
        ):
            parked.sendall(_request("http", "id=p"))
            assert parked.recv(65536).startswith(b"HTTP/1.1 200 ")  # then idle, kept alive
            busy.sendall(_request("http", f"id=b&log={log}&gate={tmp_path / 'open'}"))
            wait_until(Path(f"{log}.b").exists, 10, "the request to start")
            srv.signal(signal.SIGTERM)  # the master's graceful stop: SIGTERM to the worker
            wait_until(lambda: srv.log().count("stop: SIGTERM"), 10, "the master to stop")
            (tmp_path / "open").touch()
            head, body = _head_and_body(busy)
            assert head.startswith(b"HTTP/1.1 200 ") and body == b"b", (head, body)
            assert parked.recv(65536) == b""  # closed after the stop's grace, unanswered: idle
        assert srv.wait(30) == 0
        said = srv.log()
        assert said.count(f"worker {worker} stopping (SIGTERM)") == 1, said
