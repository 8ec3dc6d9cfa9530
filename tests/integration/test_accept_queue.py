"""A full accept queue: clients wait in the kernel and are served once the worker is free.

sockactd binds its own listener with a small `listen` backlog; its one worker is held
by a slow request while more clients connect than the kernel queues. The kernel keeps
backlog + 1 of them and drops the other SYNs (the clients retry after 1 s, 3 s, ...).
When the slow request ends, every client is answered, by the same worker: no restart.
"""

from __future__ import annotations

import selectors
import socket
import time
from pathlib import Path

from tests.integration.server import Server, http_get
from tests.support import free_port, wait_until

APP = "tests.apps.slow:app"
BACKLOG = 2
CLIENTS = 20


def test_clients_past_a_full_accept_queue_are_all_served_without_a_restart(
    tmp_path: Path,
) -> None:
    port = free_port()
    srv = Server(tmp_path, ["--http-socket", f"127.0.0.1:{port}", "--processes", "1",
                            "--listen", str(BACKLOG), APP])  # fmt: skip
    srv.start()
    mark = tmp_path / "slow-started"
    holder = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        workers = srv.worker_pids()
        holder.sendall(f"GET /?s=1.5&mark={mark} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        wait_until(mark.exists, 10, "the slow request to start")
        began = time.monotonic()
        answered = _connect_and_ask(port, CLIENTS, timeout=30)
        assert holder.recv(100).startswith(b"HTTP/1.1 200 ")
        assert [status for _, status in answered] == ["200"] * CLIENTS, answered
        # Some clients waited for a SYN retry: the queue was full (not a vacuous pass).
        assert max(at for at, _ in answered) - began > 1.0
        assert srv.worker_pids() == workers
        assert http_get(port, "/?s=0")[0] == 200
    finally:
        holder.close()
        srv.stop()


def _connect_and_ask(port: int, clients: int, timeout: float) -> list[tuple[float, str]]:
    """Connect `clients` sockets at once, one request each; [(answered at, status)]."""
    sel = selectors.DefaultSelector()
    request = b"GET /?s=0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    found: list[tuple[float, str]] = []
    for _ in range(clients):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sel.register(sock, selectors.EVENT_WRITE, [b""])
    deadline = time.monotonic() + timeout
    try:
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(0.1):
                sock, got = key.fileobj, key.data
                assert isinstance(sock, socket.socket)
                if key.events == selectors.EVENT_WRITE:
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        found.append((time.monotonic(), f"connect failed: errno {error}"))
                        sel.unregister(sock)
                        sock.close()
                        continue
                    sock.sendall(request)
                    sel.modify(sock, selectors.EVENT_READ, got)
                    continue
                try:
                    chunk = sock.recv(4096)
                    status = got[0][9:12].decode() or "closed unanswered"
                except OSError as exc:
                    chunk, status = b"", exc.strerror or "reset"
                got[0] += chunk
                if not chunk:
                    found.append((time.monotonic(), status))
                    sel.unregister(sock)
                    sock.close()
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        sel.close()
    return found
