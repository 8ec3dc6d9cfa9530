"""What broken code and a broken configuration do to an instance (issue 14, #7, #8, #9)."""

from __future__ import annotations

from tests.support import wait_until
from tests.systemd.clients import APP_MODULE, app_settings, app_source, get
from tests.systemd.sandbox import Sandbox

SERVICE = "sockactd@demo.service"
SOCKET = "sockactd@demo.socket"


def test_broken_code_and_restart_keep_the_listening_socket(sandbox: Sandbox) -> None:
    sandbox.write_code(APP_MODULE, app_source(version=1))
    sandbox.write_config(app_settings())
    sandbox.systemctl("start", SOCKET, SERVICE)
    assert get(sandbox.port).body["version"] == 1
    sandbox.write_code(APP_MODULE, app_source(version=2, broken=True))
    restart = sandbox.systemctl("restart", SERVICE, check=False)
    assert restart.returncode != 0, "systemctl restart hid that the new code cannot load"
    # Failing for longer than the start limit's 10 s: systemd keeps retrying, the socket stays.
    wait_until(
        lambda: int(sandbox.prop(SERVICE, "NRestarts") or 0) >= 6,
        90,
        f"paced retries (state {sandbox.show(SERVICE, 'ActiveState', 'Result')})",
        interval=0.2,
    )
    assert sandbox.prop(SOCKET, "ActiveState") == "active"
    assert sandbox.prop(SERVICE, "Result") != "start-limit-hit"
    sandbox.write_code(APP_MODULE, app_source(version=3))  # the fix; no systemctl command
    reply = get(sandbox.port, timeout=30)
    assert (reply.status, reply.body["version"]) == (200, 3)
    sandbox.wait_for(SERVICE, "ActiveState", "active")


def test_a_missing_config_fails_once_with_status_78(sandbox: Sandbox) -> None:
    sandbox.write_code(APP_MODULE, app_source(version=1))
    assert not sandbox.config_path().exists()
    start = sandbox.systemctl("start", SERVICE, check=False)
    assert start.returncode != 0
    sandbox.wait_for(SERVICE, "ActiveState", "failed")
    status = sandbox.show(SERVICE, "NRestarts", "ExecMainStatus", "Result")
    assert status == {"NRestarts": "0", "ExecMainStatus": "78", "Result": "exit-code"}
    assert sandbox.log(SERVICE).count("cannot read") == 1, sandbox.log(SERVICE)
    # recovery once the file exists: one command
    sandbox.write_config(app_settings())
    sandbox.systemctl("restart", SOCKET)
    assert get(sandbox.port, timeout=30).status == 200
