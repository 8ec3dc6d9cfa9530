"""Workers whose master dies (kill -9): they go within a second, but only after
finishing what they accepted (issue 12 items 8 and 9).

A worker still importing the app has accepted nothing: it exits at once, and the
address is free for the next start. A serving worker drains as for SIGTERM: the
request in flight gets its answer, a connection parked before the death is still
served, the worker says one line and exits, with no traceback.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from tests.integration.server import Server
from tests.support import free_port, wait_until

SLOW_IMPORT = """
import pathlib, time
(pathlib.Path(__file__).parent / "importing").touch()
time.sleep(30)

def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def address_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
        return True


def test_a_worker_importing_the_app_exits_with_its_master(tmp_path: Path) -> None:
    (tmp_path / "slow_import.py").write_text(SLOW_IMPORT)
    port = free_port()
    srv = Server(tmp_path, ["--http-socket", f"127.0.0.1:{port}", "--lazy-apps",
                            "--pythonpath", str(tmp_path), "slow_import:app"])  # fmt: skip
    srv.start(wait_ready=False)
    try:
        wait_until(lambda: (tmp_path / "importing").exists(), 20, "a worker to import the app")
        workers = srv.worker_pids()
        os.kill(srv.pid, signal.SIGKILL)
        srv.wait(10)
        killed = time.monotonic()
        wait_until(lambda: all(gone(pid) for pid in workers), 2, "the workers to exit")
        print(f"workers gone {time.monotonic() - killed:.3f}s after the master")
        assert address_free(port)  # the next start can bind it
        assert "its master is gone while the app was loading" in srv.log()
    finally:
        srv.stop()


def test_a_serving_worker_whose_master_dies_drains_like_sigterm(tmp_path: Path) -> None:
    port = free_port()
    srv = Server(tmp_path, ["--http-socket", f"127.0.0.1:{port}", "--processes", "1",
                            "tests.apps.slow:app"]).start()  # fmt: skip
    mark = tmp_path / "started"
    try:
        (worker,) = srv.worker_pids()
        parked = socket.create_connection(("127.0.0.1", port), timeout=10)
        parked.sendall(b"GET /?s=0 HTTP/1.1\r\n")  # a head not finished: parked
        busy = socket.create_connection(("127.0.0.1", port), timeout=10)
        busy.sendall(f"GET /?s=1&mark={mark} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_until(mark.exists, 10, "the request to be in flight")
        log_size = len(srv.log())
        os.kill(srv.pid, signal.SIGKILL)
        srv.wait(10)
        parked.sendall(b"Host: x\r\n\r\n")
        for sock in (busy, parked):
            with sock:
                answer = sock.recv(65536)
                assert answer.startswith(b"HTTP/1.1 200 "), answer
                assert answer.endswith(b"slow done"), answer
        wait_until(lambda: gone(worker), 5, "the worker to exit")
        said = srv.log()[log_size:]
        assert "Traceback" not in said and "crashed" not in said, said
        assert said.count(f"[worker {worker} ") == 1, said  # one line: why it stops
        assert "stopping (its master is gone)" in said, said
    finally:
        srv.stop()
