"""A reference point, not a server: the least a pure-Python uwsgi server can do per request.

    .venv/bin/python bench/floor.py ADDRESS [--busy-us N]   (HOST:PORT or a UNIX socket path)

bench/nginx.py runs it next to sockactd and uWSGI, behind the same nginx, with the
same app and as many forked workers (common.machine_workers(): one per usable CPU). Per
request it does only what no uwsgi server can skip: accept, one blocking read,
sockactd's own vars parser (protocols/uwsgi.py), call the app, send the status line, the
headers and the body in one write, close.

It checks nothing -- no header validation, no limits, no timeouts, no error
handling, no request body, no parking of slow clients, no scoreboard, no graceful
stop -- so it is never to be deployed. What it measures is a ceiling: no correct
pure-Python server can beat it on the same machine, so how far sockactd is from it
says how much of the gap to uWSGI a pure-Python server can still close.
`--busy-us N` spins N microseconds per request before calling the app: what each
microsecond of server work costs in throughput on the machine at hand.
"""

from __future__ import annotations

import _socket
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
# the checkout last: sockactd comes from the interpreter's own path, bench.common from here
sys.path.append(str(Path(__file__).resolve().parent.parent))

from hello import app  # type: ignore[import-not-found]  # bench/apps: through sys.path

from bench.common import machine_workers
from sockactd.errors import ProtocolError
from sockactd.protocols.uwsgi import parse_packet

WORKERS = machine_workers()
BUSY_S = float(sys.argv[3]) / 1e6 if sys.argv[2:3] == ["--busy-us"] else 0.0
BASE: dict[str, Any] = {
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    "wsgi.input": None,
    "SCRIPT_NAME": "",
}
StartResponse = Callable[[str, list[tuple[str, str]]], None]


def listen(address: str) -> _socket.socket:
    if address.startswith("/"):
        Path(address).unlink(missing_ok=True)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.bind(address)
    else:
        host, port = address.rsplit(":", 1)
        sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def serve(listener: _socket.socket) -> None:
    epoll = select.epoll()
    epoll.register(listener.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
    family = listener.family
    started: list[Any] = [None, None]

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        started[0], started[1] = status, headers

    while True:
        epoll.poll(1.0)
        try:
            fd, _ = listener._accept()  # type: ignore[attr-defined]
        except BlockingIOError:
            continue
        conn = _socket.socket(family, _socket.SOCK_STREAM, 0, fd)
        try:
            answer(conn, start_response, started)
        except (OSError, ProtocolError):
            pass  # a front end that went away, or a bad packet: this is not a real server
        conn.close()


def answer(conn: _socket.socket, start_response: StartResponse, started: list[Any]) -> None:
    parsed = parse_packet(conn.recv(65536), 65535)
    if parsed is None:
        return  # a short read: nginx sends the whole packet at once, so this is not nginx
    environ: dict[str, Any] = {**parsed[0].vars, **BASE}
    if BUSY_S:
        until = time.perf_counter() + BUSY_S
        while time.perf_counter() < until:
            pass
    result: Iterable[bytes] = app(environ, start_response)
    body = b"".join(result)
    lines = "".join(f"{name}: {value}\r\n" for name, value in started[1])
    conn.send(f"HTTP/1.1 {started[0]}\r\n{lines}\r\n".encode("latin-1") + body)


def main() -> None:
    listener = listen(sys.argv[1])
    children = []
    for _ in range(WORKERS):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            serve(listener)
        children.append(pid)

    def stop(signum: int, frame: Any) -> None:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        for pid in children:
            os.waitpid(pid, 0)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
