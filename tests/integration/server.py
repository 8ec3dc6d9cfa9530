"""Run a real sockactd as a child process and talk to it like an operator would.

`NotifyListener` is the datagram socket systemd would own (NOTIFY_SOCKET);
`Server` starts `python -m sockactd ...` with it, knows its control socket,
and stops it by its own PID; `Load` is a bounded load generator (threads with
http.client on loopback) that records every failure by kind and which
generation answered each request.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import ROOT, child_environ, wait_until

__all__ = ["Load", "NotifyListener", "Server", "get_json", "http_get"]

_NOFILE = resource.RLIMIT_NOFILE


class NotifyListener:
    """An AF_UNIX datagram socket standing in for systemd's notification socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[dict[str, str]] = []

    def poll(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append(fields)

    def seen(self, key: str, value: str | None = None) -> list[dict[str, str]]:
        return [m for m in self.poll() if key in m and (value is None or m[key] == value)]

    def wait_for(
        self, key: str, value: str | None = None, timeout: float = 15.0, after: int = 0
    ) -> dict[str, str]:
        """The first message (index >= `after`) carrying `key` (= `value`)."""
        found: list[dict[str, str]] = []

        def check() -> bool:
            msgs = self.poll()[after:]
            found[:] = [m for m in msgs if key in m and (value is None or m[key] == value)]
            return bool(found)

        wait_until(check, timeout, f"notification {key}={value or '*'}")
        return found[0]

    def close(self) -> None:
        self.sock.close()


def http_get(
    port: int, path: str = "/", timeout: float = 10.0, host: str = "127.0.0.1"
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get_json(port: int, path: str = "/") -> dict[str, object]:
    status, body = http_get(port, path)
    assert status == 200, (status, body)
    result: dict[str, object] = json.loads(body)
    return result


@dataclass
class Server:
    """A sockactd child process with a notify socket and a control socket in `tmp`."""

    tmp: Path
    args: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    notify: NotifyListener | None = None
    fd_limit: tuple[int, int] | None = None  # the server's RLIMIT_NOFILE (soft, hard)

    @property
    def control(self) -> str:
        return str(self.tmp / "ctl.sock")

    @property
    def log_path(self) -> Path:
        return self.tmp / "server.log"

    def start(self, wait_ready: bool = True) -> Server:
        self.notify = NotifyListener(self.tmp / "notify.sock")
        env = child_environ(self.env)
        env["NOTIFY_SOCKET"] = str(self.notify.path)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # reload tests rewrite app files within a second
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(":")
        argv = [sys.executable, "-m", "sockactd", "--control-socket", self.control, *self.args]
        limit = self.fd_limit
        preexec = None if limit is None else lambda: resource.setrlimit(_NOFILE, limit)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                env=env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                cwd=self.tmp,
                preexec_fn=preexec,
            )
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        assert self.notify is not None
        try:
            self.notify.wait_for("READY", "1", timeout)
        except AssertionError:
            raise AssertionError(f"server not ready; log:\n{self.log()}") from None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "sockactd", "ctl", "--control-socket", self.control, *args]
        env = child_environ()
        env["PYTHONPATH"] = str(ROOT)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)

    def status(self) -> dict[str, object]:
        result = self.ctl("status", "--json")
        assert result.returncode == 0, result.stderr
        data: dict[str, object] = json.loads(result.stdout)
        return data

    def serving_pids(self) -> set[int]:
        """The PIDs `sockactctl status` lists in state "serving"."""
        workers = self.status()["workers"]
        assert isinstance(workers, list)
        return {int(w["pid"]) for w in workers if w["state"] == "serving"}

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def stop(self) -> None:
        """Stop the server we started (by PID); SIGKILL if it does not go."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.notify is not None:
            self.notify.close()


@contextlib.contextmanager
def running(
    tmp: Path, *args: str, env: dict[str, str] | None = None, port: int = 0
) -> Iterator[Server]:
    server = Server(tmp, args, env or {}, port)
    try:
        yield server.start()
    finally:
        server.stop()


@dataclass
class Load:
    """Continuous GETs from `threads` threads until stopped (and never past `limit` seconds).

    Each thread opens a new connection per request unless `keepalive`. Every
    failure is recorded by kind (refused, reset, timeout, 5xx, ...), every
    answer by the generation the demo app reports.
    """

    port: int
    threads: int = 4
    limit: float = 60.0
    keepalive: bool = False
    path: str = "/"
    failures: Counter[str] = field(default_factory=Counter)
    generations: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    ok: int = 0
    last_generation: int = 0
    keep_bodies: bool = False  # keep every decoded answer in `bodies`
    bodies: list[dict[str, object]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        self._deadline = time.monotonic() + self.limit
        for _ in range(self.threads):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def total(self) -> int:
        return self.ok + sum(self.failures.values())

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            if conn is None or not self.keepalive:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                body = response.read()
                self._record(response.status, body)
            except Exception as exc:  # every failure kind counts, none may be hidden
                self._fail(type(exc).__name__)
                conn.close()
                conn = None
            finally:
                if conn is not None and not self.keepalive:
                    conn.close()
        if conn is not None:
            conn.close()

    def _record(self, status: int, body: bytes) -> None:
        if status >= 500:
            self._fail(f"HTTP {status}")
            return
        try:
            data = json.loads(body)
        except ValueError:
            self._fail("bad body")
            return
        with self._lock:
            self.ok += 1
            if self.keep_bodies:
                self.bodies.append(data)
            self.generations[int(data.get("generation", 0))] += 1
            self.versions[str(data.get("version", ""))] += 1
            self.last_generation = int(data.get("generation", 0))

    def _fail(self, kind: str) -> None:
        with self._lock:
            self.failures[kind] += 1

    def wait_requests(self, count: int, timeout: float = 20.0) -> None:
        start = self.total()
        wait_until(lambda: self.total() >= start + count, timeout, f"{count} more requests")
