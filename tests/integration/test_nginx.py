"""The whole server behind a real nginx, through both uwsgi_pass and proxy_pass.

sockactd runs as `python -m sockactd --socket PATH | --http-socket HOST:PORT
--processes 2 tests.apps.nginx_apps:app`, started and stopped (by PID) here; nginx
comes from tests/integration/nginx.py. Every request goes client -> nginx -> sockactd.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.apps.nginx_apps import BIG, big_body
from tests.integration.nginx import Mode, NginxProcess, nginx_starter, require_nginx
from tests.support import child_environ, free_port, sockactd_argv, wait_until

pytestmark = pytest.mark.nginx

APP = "tests.apps.nginx_apps:app"
ODD_HEADER = "caf\xe9 ~!#$%&'*+^`|{}\"<>?/\\ \t x"
_BOOT_TIMEOUT = 20.0
_STOP_TIMEOUT = 15.0


class Sockactd:
    """One sockactd master started by this test, stopped by its PID."""

    def __init__(self, workdir: Path, mode: Mode, *, unix_http: bool = False) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "sockactd.log"
        self._probe: str | tuple[str, int]
        if mode is Mode.UWSGI or unix_http:
            path = workdir / "app.sock"
            self.upstream, self._probe = f"unix:{path}", str(path)
            listen = ["--socket", str(path)]
            if unix_http:  # nginx over a UNIX socket has no address: trust "unix" peers
                listen = ["--http-socket", str(path), "--trusted-proxies", "unix"]
        else:
            port = free_port()
            self.upstream, self._probe = f"127.0.0.1:{port}", ("127.0.0.1", port)
            listen = ["--http-socket", self.upstream, "--trusted-proxies", "127.0.0.1"]
        # its own control socket: the default one is shared by every sockactd on the host
        control = ["--control-socket", str(workdir / "control.sock")]
        self.argv = sockactd_argv(*listen, *control, "--processes", "2", APP)
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            self.argv,
            env=child_environ(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(self._answers, _BOOT_TIMEOUT, "sockactd to accept connections")
        except AssertionError:
            self.stop()
            raise AssertionError(f"sockactd did not start:\n{self.log_text()}") from None

    def _answers(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"sockactd exited with {self._process.returncode}")
        family = socket.AF_UNIX if isinstance(self._probe, str) else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(self._probe)
            except OSError:
                return False
            return True

    def stop(self) -> int | None:
        """SIGTERM (graceful), SIGKILL to its process group after the deadline; the status."""
        process, self._process = self._process, None
        status = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                status = process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return status

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(params=[Mode.UWSGI, Mode.HTTP], ids=["uwsgi_pass", "proxy_pass"])
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


@pytest.fixture
def server(tmp_path: Path, mode: Mode) -> Iterator[Sockactd]:
    require_nginx()
    sockactd = Sockactd(tmp_path / "srv", mode)
    sockactd.start()
    try:
        yield sockactd
    finally:
        status = sockactd.stop()
        assert status == 0, f"sockactd exit status {status} on SIGTERM:\n{sockactd.log_text()}"


@pytest.fixture
def nginx(tmp_path: Path, server: Sockactd, mode: Mode) -> Iterator[NginxProcess]:
    with nginx_starter(tmp_path) as start:
        front = start(server.upstream, mode, read_timeout=30.0)
        yield front
        errors = [line for line in front.logs().splitlines() if "[error]" in line]
        assert errors == [], f"nginx logged errors:\n{front.logs()}\n{server.log_text()}"


def send(
    nginx: NginxProcess,
    method: str,
    target: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=40)
    try:
        conn.request(method, target, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_get_with_odd_characters(nginx: NginxProcess, mode: Mode) -> None:
    status, body = send(nginx, "GET", "/caf%C3%A9/x?q=1&r=%20", headers={"X-Odd": ODD_HEADER})
    assert status == 200, body
    seen = json.loads(body)
    assert (seen["method"], seen["path"], seen["query"]) == ("GET", "/caf\xc3\xa9/x", "q=1&r=%20")
    assert seen["odd"] == ODD_HEADER
    assert seen["scheme"] == "http"


def test_responses_carry_one_date(nginx: NginxProcess, mode: Mode) -> None:
    # uwsgi responses carry no Date (as uWSGI's): nginx, the HTTP server here, adds it.
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=40)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 200
    assert len(response.headers.get_all("Date") or []) == 1


def test_post_several_megabytes(nginx: NginxProcess) -> None:
    payload = os.urandom(BIG)
    status, body = send(nginx, "POST", "/", body=payload)
    assert status == 200, body[:300]
    seen = json.loads(body)
    assert (seen["length"], seen["sha256"]) == (BIG, hashlib.sha256(payload).hexdigest())


def test_chunked_request_body(nginx: NginxProcess) -> None:
    pieces = [os.urandom(size) for size in (1, 1000, 65536, 1 << 20, 7)]
    status, body = send(nginx, "POST", "/", body=iter(pieces), chunked=True)
    assert status == 200, body[:300]
    seen = json.loads(body)
    whole = b"".join(pieces)
    assert (seen["length"], seen["sha256"]) == (len(whole), hashlib.sha256(whole).hexdigest())


def test_large_response(nginx: NginxProcess) -> None:
    status, body = send(nginx, "GET", "/big")
    assert status == 200
    assert body == big_body()


def test_app_exception_is_a_500_not_a_broken_connection(nginx: NginxProcess) -> None:
    status, _ = send(nginx, "GET", "/boom")
    assert status == 500
    # and the worker is still there for the next request
    assert send(nginx, "GET", "/")[0] == 200


def test_slow_app_does_not_block_other_requests(nginx: NginxProcess, tmp_path: Path) -> None:
    mark = tmp_path / "slow-started"
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(send, nginx, "GET", f"/slow?s=3&mark={mark}")
        wait_until(mark.exists, 10, "the slow request to reach the app")
        started = time.monotonic()
        assert send(nginx, "GET", "/")[0] == 200
        assert time.monotonic() - started < 2.0  # the other worker answered
        status, body = slow.result(timeout=30)
    assert status == 200
    assert json.loads(body)["path"] == "/slow"


def test_many_sequential_requests(nginx: NginxProcess) -> None:
    statuses = [send(nginx, "GET", f"/n{i}")[0] for i in range(50)]
    assert statuses == [200] * 50


def test_keepalive_upstream_reuses_connections(tmp_path: Path) -> None:
    require_nginx()
    sockactd = Sockactd(tmp_path / "srv", Mode.HTTP)
    sockactd.start()
    try:
        with nginx_starter(tmp_path) as start:
            front = start(sockactd.upstream, Mode.HTTP)
            peers = [json.loads(send(front, "GET", "/")[1])["remote_port"] for _ in range(20)]
    finally:
        assert sockactd.stop() == 0, sockactd.log_text()
    assert None not in peers, "REMOTE_PORT missing from the environ"
    # one nginx worker sending requests one after another: one upstream connection, reused
    assert len(set(peers)) < 5, peers


def test_forwarded_for_from_nginx_is_believed(nginx: NginxProcess, mode: Mode) -> None:
    _, body = send(nginx, "GET", "/", headers={"X-Forwarded-For": "203.0.113.7"})
    seen = json.loads(body)
    if mode is Mode.HTTP:
        # nginx appends its client (127.0.0.1, trusted) and sends 203.0.113.7, 127.0.0.1
        assert seen["remote_addr"] == "203.0.113.7"
    else:
        # over uwsgi REMOTE_ADDR is the var nginx sends: its own client
        assert seen["remote_addr"] == "127.0.0.1"


def test_proxy_pass_over_a_unix_http_socket(tmp_path: Path) -> None:
    require_nginx()
    sockactd = Sockactd(tmp_path / "srv", Mode.HTTP, unix_http=True)
    sockactd.start()
    try:
        with nginx_starter(tmp_path) as start:
            front = start(sockactd.upstream, Mode.HTTP)
            payload = os.urandom(BIG)
            status, body = send(
                front, "POST", "/", body=payload, headers={"X-Forwarded-For": "203.0.113.7"}
            )
    finally:
        assert sockactd.stop() == 0, sockactd.log_text()
    assert status == 200, body[:300]
    seen = json.loads(body)
    assert (seen["length"], seen["sha256"]) == (BIG, hashlib.sha256(payload).hexdigest())
    # nginx (a trusted "unix" peer) appended the client it saw, 127.0.0.1, which is not
    # trusted here: that is the client, and the 203.0.113.7 the client wrote is ignored
    assert seen["remote_addr"] == "127.0.0.1"


@pytest.mark.parametrize(
    "packet",
    [
        struct.pack("<BHB", 5, 0, 0),  # modifier1 other than 0
        struct.pack("<BHB", 0, 65535, 0),  # vars block over buffer-size
        struct.pack("<BHB", 0, 4, 0) + b"\x09\x00ab",  # key length runs past the block
    ],
    ids=["modifier1", "oversize", "truncated"],
)
def test_bad_uwsgi_packet_closes_the_connection_and_serving_goes_on(
    tmp_path: Path, packet: bytes
) -> None:
    require_nginx()
    sockactd = Sockactd(tmp_path / "srv", Mode.UWSGI)
    sockactd.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(10)
            raw.connect(sockactd.upstream.removeprefix("unix:"))
            raw.sendall(packet)
            assert raw.recv(1024) == b""  # closed without an answer
        with nginx_starter(tmp_path) as start:
            front = start(sockactd.upstream, Mode.UWSGI)
            assert send(front, "GET", "/")[0] == 200
    finally:
        assert sockactd.stop() == 0, sockactd.log_text()
    assert "bad uwsgi request" in sockactd.log_text()
