"""A real nginx in front of the server under test, run as a child process of the test.

Each NginxProcess gets its own prefix directory inside the test's tmp_path: config,
our own `uwsgi_params`, pid file, error and access logs, and every temp path live
there, and nginx is started as `nginx -p PREFIX -c CONF -e ERRLOG` with
`daemon off; master_process on;`, so it never touches /etc/nginx, /var/log/nginx,
/var/lib/nginx or /run. It listens on 127.0.0.1 only, on a free port. It runs one
worker process unless asked for more (`workers`): tests count on one (requests sent
one after another share one worker's upstream keep-alive pool, test_nginx.py); the
benches ask for one per usable CPU, so nginx is not their bottleneck on a bigger machine.

Two modes, one upstream (TCP "127.0.0.1:PORT" or "unix:/path"):
  uwsgi -- `uwsgi_pass`, the standard uwsgi params written out here;
  http  -- `proxy_pass` over HTTP/1.1 with a keep-alive upstream pool.

It is stopped by its own PID: SIGQUIT (graceful), then SIGKILL to the process group
it leads (it was started in a new session) once the deadline passes.

This module starts nothing on import; tests use `nginx_starter(tmp_path)` or the
`nginx_factory` fixture, which stop every nginx they started.
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Final

import pytest

from tests.support import free_port, require, wait_until

__all__ = [
    "NGINX_BIN",
    "UWSGI_PARAMS",
    "Mode",
    "NginxProcess",
    "nginx_factory",
    "nginx_starter",
    "require_nginx",
]

NGINX_BIN: Final = shutil.which("nginx", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/nginx"

# The CGI variables nginx sends as uwsgi vars: the conventional list, as
# (name, nginx variable[, modifier]). HTTP_* request headers follow automatically.
UWSGI_PARAMS: Final = (
    ("QUERY_STRING", "$query_string"),
    ("REQUEST_METHOD", "$request_method"),
    ("CONTENT_TYPE", "$content_type"),
    ("CONTENT_LENGTH", "$content_length"),
    ("REQUEST_URI", "$request_uri"),
    ("PATH_INFO", "$document_uri"),
    ("DOCUMENT_ROOT", "$document_root"),
    ("SERVER_PROTOCOL", "$server_protocol"),
    ("REQUEST_SCHEME", "$scheme"),
    ("HTTPS", "$https if_not_empty"),
    ("REMOTE_ADDR", "$remote_addr"),
    ("REMOTE_PORT", "$remote_port"),
    ("SERVER_PORT", "$server_port"),
    ("SERVER_NAME", "$server_name"),
)

_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 10.0


class Mode(enum.Enum):
    UWSGI = "uwsgi"  # uwsgi_pass
    HTTP = "http"  # proxy_pass


def require_nginx() -> None:
    """Skip (or, with SOCKACTD_REQUIRE_ALL=1, fail) when nginx is not installed."""
    require(
        os.access(NGINX_BIN, os.X_OK),
        f"needs nginx at {NGINX_BIN} (Debian package nginx-light; scripts/setup installs it)",
    )


class NginxProcess:
    """One nginx master (+`workers` workers) in front of `upstream`; use as a context manager."""

    def __init__(
        self,
        tmp_path: Path,
        upstream: str,
        mode: Mode | str,
        *,
        read_timeout: float = 60.0,
        extra_server: str = "",
        keepalive: int = 16,
        workers: int = 1,
    ) -> None:
        self.prefix = tmp_path
        self.upstream = upstream
        self.mode = Mode(mode)
        self.port = free_port()
        self.read_timeout = read_timeout
        self.extra_server = extra_server  # more directives for the server block (tests)
        self.keepalive = keepalive  # idle upstream connections nginx keeps (proxy_pass)
        self.workers = workers  # nginx's worker_processes
        self.conf_dir = tmp_path / "conf"
        self.conf_path = self.conf_dir / "nginx.conf"
        self.error_log = tmp_path / "logs" / "error.log"
        self.access_log = tmp_path / "logs" / "access.log"
        self.pid_file = tmp_path / "logs" / "nginx.pid"
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def __enter__(self) -> NginxProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = _START_TIMEOUT) -> None:
        """Write the config, start nginx and wait until its port accepts connections."""
        require_nginx()
        self.write_config()
        self._output = (self.prefix / "logs" / "stdout.log").open("wb")
        self._process = subprocess.Popen(
            [
                NGINX_BIN,
                "-p",
                f"{self.prefix}/",
                "-c",
                str(self.conf_path),
                "-e",
                str(self.error_log),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a SIGKILL reaches the worker too
        )
        try:
            wait_until(self._answers, timeout, f"nginx on port {self.port}")
        except AssertionError:
            self.stop()
            raise AssertionError(f"nginx did not start:\n{self.logs()}") from None

    def _answers(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"nginx exited with {self._process.returncode}:\n{self.logs()}")
        # nginx listens before it writes its pid file: wait for both, so `stop` and tests
        # that read the pid file never see it half-started
        if not self.pid_file.exists() or not self.pid_file.read_text().strip():
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """SIGQUIT (finish in-flight requests), then SIGKILL to its group after `timeout`."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGQUIT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._output is not None:
            self._output.close()
            self._output = None

    def logs(self) -> str:
        """Error log and stdout text, for assertion messages."""
        parts = []
        for path in (self.error_log, self.prefix / "logs" / "stdout.log"):
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def access_lines(self) -> list[str]:
        """Access log lines: `status upstream_status method uri upstream_addr`."""
        if not self.access_log.exists():
            return []
        return self.access_log.read_text(errors="replace").splitlines()

    def write_config(self) -> None:
        for sub in ("conf", "logs", "temp"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "uwsgi_params").write_text(render_uwsgi_params())
        self.conf_path.write_text(self.render_config())

    def render_config(self) -> str:
        temp = self.prefix / "temp"
        user = "user root root;\n" if os.geteuid() == 0 else ""  # workers could not reach tmp_path
        return f"""\
{user}daemon off;
master_process on;
worker_processes {self.workers};
pid {self.pid_file};
error_log {self.error_log} info;
events {{ worker_connections 1024; }}
http {{
    log_format upstreams '$status $upstream_status $request_method $request_uri '
                         '$upstream_addr';
    access_log {self.access_log} upstreams;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    uwsgi_temp_path {temp}/uwsgi;
    fastcgi_temp_path {temp}/fastcgi;
    scgi_temp_path {temp}/scgi;
    client_max_body_size 64m;
    client_body_buffer_size 128k;
    keepalive_timeout 30s;
    default_type application/octet-stream;
{self._render_upstream()}
    server {{
        listen 127.0.0.1:{self.port};
        server_name localhost;
{self.extra_server}
        location / {{
{self._render_location()}
        }}
    }}
}}
"""

    def _render_upstream(self) -> str:
        # idle upstream connections: nginx must give up before sockactd's keepalive-timeout (5s)
        keepalive = (
            f"        keepalive {self.keepalive};\n        keepalive_timeout 4s;\n"
            if self.mode is Mode.HTTP
            else ""
        )
        return f"    upstream app {{\n        server {self.upstream};\n{keepalive}    }}"

    def _render_location(self) -> str:
        if self.mode is Mode.UWSGI:
            return f"""\
            include uwsgi_params;
            uwsgi_pass app;
            uwsgi_read_timeout {self.read_timeout:g}s;
            uwsgi_send_timeout {self.read_timeout:g}s;
            uwsgi_buffering on;"""
        return f"""\
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout {self.read_timeout:g}s;
            proxy_send_timeout {self.read_timeout:g}s;
            proxy_buffering on;"""


def render_uwsgi_params() -> str:
    lines = [f"uwsgi_param {name:<16}{value};" for name, value in UWSGI_PARAMS]
    # $host, not the raw Host header: absolute-form request targets make $http_host untrustworthy
    lines.append(f"uwsgi_param {'HTTP_HOST':<16}$host;")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def nginx_starter(tmp_path: Path) -> Iterator[Callable[..., NginxProcess]]:
    """Yield `start(upstream, mode, ...) -> NginxProcess` (running); stop them all on exit."""
    started: list[NginxProcess] = []

    def start(
        upstream: str, mode: Mode | str, *, read_timeout: float = 60.0, extra_server: str = ""
    ) -> NginxProcess:
        prefix = tmp_path / f"nginx{len(started)}"
        nginx = NginxProcess(
            prefix, upstream, mode, read_timeout=read_timeout, extra_server=extra_server
        )
        started.append(nginx)
        nginx.start()
        return nginx

    try:
        yield start
    finally:
        for nginx in reversed(started):
            nginx.stop()


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator[Callable[..., NginxProcess]]:
    """Fixture form of nginx_starter; import it into a conftest to use it by name."""
    with nginx_starter(tmp_path) as start:
        yield start
