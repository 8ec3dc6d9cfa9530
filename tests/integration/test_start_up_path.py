"""The first response under socket activation comes from workers that carry no extra weight.

Under socket activation the first client waits while sockactd starts, so every
module imported before the first workers are forked is on that client's clock
(bench/throughput.py measures the time; a test never does). The master forks
the first workers before it loads its own machinery, and the start-up path
keeps away from modules that cost more than everything sockactd needs. What
those first workers have loaded when they answer shows both: it is the start-up
path, plus nothing.

The server runs as the packages run it -- through packaging/bin/sockactd -- but
with `-S`, so the modules this test's virtualenv loads at start-up (its editable
install's import finder) are not counted against sockactd.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.integration.server import http_get
from tests.support import (
    ROOT,
    child_environ,
    free_port,
    port_open,
    require,
    run_python,
    wait_until,
)

LAUNCHER = ROOT / "packaging" / "bin" / "sockactd"

# Each costs milliseconds to import, and none is needed to answer a request.
HEAVY = [
    "typing",  # plus `re`
    "dataclasses",  # plus inspect, ast, dis, tokenize
    "inspect",
    "logging",  # imported when something is logged, not before
    "argparse",
    "json",
    "tomllib",  # only with --config
    "pathlib",
    "traceback",  # only to format an error
    "urllib.parse",  # only for a path with %-escapes
    "enum",  # plus functools; sockactd's closed sets are sockactd.symbol.Symbol
    "collections",  # plus operator, keyword, reprlib: deque comes from _collections
    "socket",  # its constants become enums (plus selectors): sockactd uses _socket
    "selectors",
    "signal",  # the same: sockactd uses _signal
    "ctypes",  # PR_SET_PDEATHSIG, only where pidfd_open is refused, after a first wake-up
    "resource",  # the fd limit: raised by the master after the fork, workers after a wake-up
]
# The master's own machinery: loaded after the first workers are forked.
MASTER_ONLY = [
    "sockactd.master.master",
    "sockactd.master.reloads",
    "sockactd.control.server",
    "sockactd.triggers.base",
]
# Tools that are commands of their own, never loaded by a server at all.
NEVER_SERVING = ["sockactd.migrate", "sockactd.migrate.rules", "sockactd.migrate.ini"]
# py-autoreload's machinery, worker and master side: loaded only when it is on.
AUTORELOAD = ["sockactd.autoreload", "sockactd.worker.module_report", "sockactd.autoreload.watch",
              "sockactd.autoreload.scan", "sockactd.autoreload.inotify", "pyinotify",
              "sockactd.triggers.pyinotify_fd"]  # fmt: skip
# Each protocol's own modules: loaded only by a server with a listener that speaks it.
PROTOCOL_ONLY = {
    "http": ["sockactd.worker.http_handler", "sockactd.protocols.http", "httptools"],
    "uwsgi": ["sockactd.worker.uwsgi_handler", "sockactd.protocols.uwsgi"],
}
# The lobby's watcher (one thread per worker): started when a worker first parks a connection.
WATCHER = "sockactd.worker.watcher"


class Activated:
    """sockactd under the real systemd-socket-activate, started by its first connection."""

    def __init__(self, tmp: Path, *args: str, fdname: str = "http") -> None:
        tool = shutil.which("systemd-socket-activate")
        require(tool is not None, "needs systemd-socket-activate (Debian package systemd)")
        assert tool is not None
        self.port = free_port()
        self.log = tmp / "log"
        pythonpath = f"{ROOT}:{sysconfig.get_path('purelib')}"
        argv = [tool, "-l", f"127.0.0.1:{self.port}", f"--fdname={fdname}",
                "-E", f"PYTHONPATH={pythonpath}", sys.executable, "-S", str(LAUNCHER),
                "--control-socket", str(tmp / "ctl.sock"), *args,
                "tests.apps.modules_app:app"]  # fmt: skip
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                argv, env=child_environ(), stdout=log, stderr=log, cwd=ROOT
            )
        wait_until(lambda: port_open(self.port), 10, "systemd-socket-activate listening")

    def worker(self) -> tuple[int, set[str]]:
        """(pid, loaded modules) of the worker that answers a request."""
        status, body = http_get(self.port)
        assert status == 200, self.log.read_text()
        return _probed(body)

    def uwsgi_worker(self) -> tuple[int, set[str]]:
        """The same, asked over the uwsgi protocol (a listener named `uwsgi`)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall(_uwsgi_get())
            conn.shutdown(socket.SHUT_WR)
            answer = b"".join(iter(lambda: conn.recv(65536), b""))
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), (answer[:200], self.log.read_text())
        return _probed(body)

    def keep_alive_workers(self) -> list[tuple[int, set[str]]]:
        """Two requests on one keep-alive connection: what its worker had loaded at each."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            found = []
            for _ in range(2):
                conn.request("GET", "/")
                response = conn.getresponse()
                assert response.status == 200, self.log.read_text()
                found.append(_probed(response.read()))
            return found
        finally:
            conn.close()

    def wait_for_replacement(self, pid: int) -> set[str]:
        """SIGKILL worker `pid`; the loaded modules of the worker the master forks instead."""
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: self._answering_pid() not in (None, pid), 20, "a replacement")
        return self.worker()[1]

    def _answering_pid(self) -> int | None:
        try:
            return self.worker()[0]
        except OSError:
            return None

    def stop(self) -> None:
        self.process.terminate()  # systemd-socket-activate exec()s: this is sockactd's master
        self.process.wait(15)


def _probed(body: bytes) -> tuple[int, set[str]]:
    pid, collector, *modules = body.decode().split("\n")
    # sockactd pauses the garbage collector for its own start-up imports only
    assert collector == "gc:True"
    return int(pid.removeprefix("pid:")), set(modules)


def _uwsgi_get() -> bytes:
    pairs = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", "SERVER_NAME": "x",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
    }  # fmt: skip
    block = b"".join(
        len(k).to_bytes(2, "little") + k + len(v).to_bytes(2, "little") + v
        for k, v in ((key.encode(), value.encode()) for key, value in pairs.items())
    )
    return bytes([0]) + len(block).to_bytes(2, "little") + bytes([0]) + block


def dependency_modules() -> set[str]:
    """What importing the request path's dependencies loads by itself (httptools >= 0.6.3
    imports typing from its compiled parser, for one): sockactd cannot avoid those, so
    they are not counted (bench/patches/httptools-0.9.0-no-typing.diff)."""
    probe = "import sys, httptools; print(chr(10).join(sys.modules))"
    done = run_python(probe, "-S", env={"PYTHONPATH": sysconfig.get_path("purelib")})
    return set(done.stdout.split())


@pytest.mark.parametrize("mode", [[], ["--lazy-apps"]], ids=["preloaded", "lazy-apps"])
def test_first_workers_import_nothing_heavy(tmp_path: Path, mode: list[str]) -> None:
    server = Activated(tmp_path, *mode)
    try:
        _, modules = server.worker()  # this first connection starts sockactd
    finally:
        server.stop()
    assert "sockactd.worker.serve" in modules  # the probe does see sockactd's own modules
    assert sorted(modules & set(HEAVY) - dependency_modules()) == []
    assert sorted(modules & set(MASTER_ONLY)) == []
    assert sorted(modules & set(NEVER_SERVING)) == []
    assert sorted(modules & set(AUTORELOAD)) == []
    assert sorted(modules & set(PROTOCOL_ONLY["uwsgi"])) == []  # the listener speaks http
    assert WATCHER not in modules  # this connection is the worker's first: none parked yet


@pytest.mark.parametrize("protocol", ["uwsgi", "http"])
def test_a_server_loads_only_the_protocols_its_listeners_speak(
    tmp_path: Path, protocol: str
) -> None:
    server = Activated(tmp_path, fdname=protocol)
    try:
        _, modules = server.uwsgi_worker() if protocol == "uwsgi" else server.worker()
    finally:
        server.stop()
    assert set(PROTOCOL_ONLY[protocol]) <= modules  # the probe sees the one it speaks
    others = {name for other, names in PROTOCOL_ONLY.items() if other != protocol for name in names}
    assert sorted(modules & others) == []


def test_the_watcher_starts_once_a_connection_is_parked(tmp_path: Path) -> None:
    # With a lobby (2 processes) and one thread, the watcher is what hands a busy worker's
    # parked connections over; the first answer does not wait for it, and once this
    # keep-alive connection is parked, its worker has it.
    server = Activated(tmp_path, "--processes", "2")
    try:
        (first_pid, first), (second_pid, second) = server.keep_alive_workers()
    finally:
        server.stop()
    assert first_pid == second_pid  # one connection, one worker
    assert WATCHER not in first
    assert WATCHER in second


def test_a_worker_forked_later_carries_the_masters_modules(tmp_path: Path) -> None:
    # The contrast that shows the probe can see them: by the time a worker is replaced,
    # the master has loaded its machinery, and the replacement is forked from it.
    server = Activated(tmp_path, "--processes", "1")
    try:
        first, _ = server.worker()
        modules = server.wait_for_replacement(first)
    finally:
        server.stop()
    assert set(MASTER_ONLY) <= modules
    assert sorted(modules & set(NEVER_SERVING)) == []  # the whole master: still no converter
    assert sorted(modules & set(AUTORELOAD)) == []  # nor py-autoreload, which is off


def test_py_autoreload_loads_its_machinery_only_when_on(tmp_path: Path) -> None:
    # The contrast for the assertions above: on, the first worker reports its modules,
    # and a worker forked from the loaded master carries the master's watcher too.
    server = Activated(tmp_path, "--processes", "1", "--lazy-apps", "--py-autoreload", "1",
                       "--autoreload-under-systemd")  # fmt: skip
    try:
        first, modules = server.worker()
        assert "sockactd.worker.module_report" in modules
        assert "sockactd.autoreload.watch" not in modules  # forked before the master loaded it
        modules = server.wait_for_replacement(first)
    finally:
        server.stop()
    assert set(AUTORELOAD) <= modules


@pytest.mark.parametrize("metrics", [False, True], ids=["without", "with-metrics-socket"])
def test_prometheus_client_is_loaded_only_with_a_metrics_socket(
    tmp_path: Path, metrics: bool
) -> None:
    # A worker forked by the running master carries every module the master loaded.
    args = ["--processes", "1"] + (["--metrics-socket", f"127.0.0.1:{free_port()}"] * metrics)
    server = Activated(tmp_path, *args)
    try:
        first, first_modules = server.worker()
        modules = server.wait_for_replacement(first)
    finally:
        server.stop()
    assert "prometheus_client" not in first_modules  # never before the first fork
    assert ("prometheus_client" in modules) is metrics
    assert ("sockactd.master.metrics" in modules) is metrics
    assert ("sockactd.master.monitor" in modules) is metrics  # nothing of it without a socket
