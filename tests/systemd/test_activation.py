"""Socket activation, readiness and the live status, in a real systemd."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support import wait_until
from tests.systemd.clients import APP_MODULE, app_settings, app_source, get
from tests.systemd.sandbox import Sandbox

SERVICE = "sockactd@demo.service"
SOCKET = "sockactd@demo.socket"
SOCKET_TEMPLATE = "sockactd@.socket"
EXAMPLES_HTTP = Path(__file__).resolve().parents[2] / "units" / "examples" / "http.conf"


def test_first_connection_starts_the_service_and_is_answered(sandbox: Sandbox) -> None:
    sandbox.write_config({"module": "sockactd.demo:app", "processes": 2})
    sandbox.systemctl("start", SOCKET)
    assert sandbox.prop(SOCKET, "ActiveState") == "active"
    assert sandbox.prop(SERVICE, "ActiveState") == "inactive"  # nothing runs before a client
    reply = get(sandbox.port, "/hello", timeout=30)
    assert reply.status == 200, sandbox.log(SERVICE)
    assert reply.body["path"] == "/hello"
    assert reply.body["generation"] >= 1
    # The first workers answer while the master is still loading its own machinery,
    # so the answer may come before READY=1 moves the unit from activating to active.
    sandbox.wait_for(SERVICE, "ActiveState", "active")
    assert reply.body["pid"] != int(sandbox.prop(SERVICE, "MainPID"))  # a worker answered


def test_start_returns_only_when_workers_serve(sandbox: Sandbox) -> None:
    delay = 2.0
    sandbox.write_code(APP_MODULE, app_source(version=1, import_delay=delay))
    sandbox.write_config(app_settings())
    began = time.monotonic()
    sandbox.systemctl("start", SERVICE)
    assert time.monotonic() - began >= delay, "READY=1 came before the app was imported"
    assert sandbox.prop(SERVICE, "ActiveState") == "active"
    asked = time.monotonic()
    assert get(sandbox.port, timeout=30).status == 200
    assert time.monotonic() - asked < delay / 2, "the first request waited for a worker to boot"


def test_status_text_is_live(sandbox: Sandbox) -> None:
    sandbox.write_code(APP_MODULE, app_source(version=1))
    sandbox.write_config(app_settings())
    sandbox.systemctl("start", SERVICE)
    serving = sandbox.prop(SERVICE, "StatusText")
    assert serving, "no STATUS= after start"
    sandbox.write_code(APP_MODULE, app_source(version=2, import_delay=3.0))
    reload = sandbox.systemctl_background("reload", SERVICE)
    try:
        wait_until(
            lambda: "reload" in sandbox.prop(SERVICE, "StatusText").lower(),
            10,
            f"StatusText to show the reload (still {sandbox.prop(SERVICE, 'StatusText')!r})",
            interval=0.05,
        )
    finally:
        assert reload.wait(timeout=120) == 0, sandbox.log(SERVICE)
    after = sandbox.prop(SERVICE, "StatusText")
    assert after and "reload" not in after.lower(), after
    assert get(sandbox.port).body["version"] == 2


# Run inside the sandbox (its /run): one HTTP/1.1 request over a UNIX socket, reply on stdout.
_UNIX_GET = """
import socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.settimeout(30)
sock.connect(sys.argv[1])
sock.sendall(b"GET /over-unix HTTP/1.1\\r\\nHost: app\\r\\nConnection: close\\r\\n\\r\\n")
reply = b""
while chunk := sock.recv(65536):
    reply += chunk
sys.stdout.write(reply.decode("latin-1"))
"""


def test_http_drop_in_serves_http_on_the_shipped_unix_socket(sandbox: Sandbox) -> None:
    # units/examples/http.conf as an operator installs it, instead of the sandbox's TCP one
    (sandbox.unit_dir / f"{SOCKET_TEMPLATE}.d" / "tcp.conf").unlink()
    sandbox.write_dropin(SOCKET_TEMPLATE, "http.conf", EXAMPLES_HTTP.read_text())
    sandbox.daemon_reload()
    sandbox.write_config({"module": "sockactd.demo:app", "processes": 1})
    sandbox.systemctl("start", SOCKET)
    shown = sandbox.show(SOCKET, "Listen", "FileDescriptorName")
    assert shown == {"Listen": "/run/sockactd/demo.sock (Stream)", "FileDescriptorName": "http"}
    reply = sandbox.nsenter("/usr/bin/python3", "-c", _UNIX_GET, "/run/sockactd/demo.sock")
    head, _, body = reply.stdout.partition("\n\n")  # text mode: CRLF reads as \n
    assert head.startswith("HTTP/1.1 200 "), reply.stdout + sandbox.log(SERVICE)
    assert '"path": "/over-unix"' in body, repr(reply.stdout)
