"""Start-up resources are claimed before any socket is bound or worker forked (issue 12, 10).

A control socket path another server answers on used to be found only after the
HTTP socket was bound and the workers forked: the second server served for a
few seconds, then exited 5 (which sockactd(8) does not list); a path too long
for a UNIX socket said "...: None". And two servers started by hand as root
collided on the one default control path. Now: one line, exit 78, nothing
bound, nothing forked; and by hand there is no default control socket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sockactd.errors import ExitCode
from tests.integration.server import NotifyListener, Server, get_json
from tests.support import child_environ, free_port, port_open

APP = "tests.apps.site_app:app"


def by_hand(env: dict[str, str] | None = None) -> dict[str, str]:
    environ = child_environ(env)
    environ.pop("RUNTIME_DIRECTORY", None)  # started from a shell, not by systemd
    return environ


def start(tmp: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sockactd", *args],
        env=by_hand(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=tmp,
    )  # fmt: skip


def refused(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def test_a_control_socket_another_server_answers_on_exits_78_before_binding(
    tmp_path: Path,
) -> None:
    first = Server(tmp_path, ["--http-socket", f"127.0.0.1:{free_port()}", APP]).start()
    try:
        port = free_port()
        second = start(
            tmp_path, "--control-socket", first.control, "--http-socket", f"127.0.0.1:{port}", APP
        )
        code, err = refused(second)
        assert code == ExitCode.CONFIG_INVALID, err
        assert err.strip().splitlines() == [
            f"sockactd: error: setting 'control-socket': another server is already answering "
            f"on control socket {first.control}"
        ]
        assert "worker" not in err and not port_open(port)  # nothing forked, nothing bound
        assert first.status()["phase"] == "serving"  # the first one is untouched
    finally:
        first.stop()


def test_a_control_socket_path_too_long_exits_78_saying_so(tmp_path: Path) -> None:
    path = str(tmp_path / ("x" * 120) / "control.sock")
    port = free_port()
    code, err = refused(
        start(tmp_path, "--control-socket", path, "--http-socket", f"127.0.0.1:{port}", APP)
    )
    assert code == ExitCode.CONFIG_INVALID, err
    assert "a UNIX socket path holds at most 107" in err and "None" not in err
    assert len(err.strip().splitlines()) == 1 and not port_open(port)


def test_a_trigger_file_in_a_missing_directory_exits_78_before_binding(tmp_path: Path) -> None:
    port = free_port()
    missing = tmp_path / "nowhere" / "reload.txt"
    code, err = refused(
        start(tmp_path, "--touch-reload", str(missing), "--http-socket", f"127.0.0.1:{port}", APP)
    )
    assert code == ExitCode.CONFIG_INVALID, err
    assert "touch-reload" in err and str(missing.parent) in err and not port_open(port)


def test_two_servers_started_by_hand_run_side_by_side(tmp_path: Path) -> None:
    """By hand (no RUNTIME_DIRECTORY, no control-socket) a server has no control socket."""
    servers, ports = [], [free_port(), free_port()]
    try:
        for i, port in enumerate(ports):
            notify = NotifyListener(tmp_path / f"notify{i}.sock")
            env = {"NOTIFY_SOCKET": str(notify.path)}
            servers.append((start(tmp_path, "--http-socket", f"127.0.0.1:{port}", APP, env=env),
                            notify))  # fmt: skip
            notify.wait_for("READY", "1", 20)
        for (process, _), port in zip(servers, ports, strict=True):
            assert process.poll() is None
            assert get_json(port)["version"] == "v1"
        result = subprocess.run(
            [sys.executable, "-m", "sockactd", "ctl", "status"],
            env=by_hand(), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == ExitCode.CONTROL_UNREACHABLE, result
        assert "--control-socket" in result.stderr
    finally:
        for process, notify in servers:
            process.terminate()  # a server we started, by its own PID
            process.communicate(timeout=30)
            notify.close()
            assert process.returncode == 0


def test_no_stale_control_file_is_left_when_the_listener_cannot_bind(tmp_path: Path) -> None:
    control = tmp_path / "ctl.sock"
    busy = Server(tmp_path / "busy", ["--http-socket", f"127.0.0.1:{free_port()}", APP])
    (tmp_path / "busy").mkdir()
    busy.start()
    try:
        taken = busy.args[1]
        code, err = refused(start(tmp_path, "--control-socket", str(control), "--http-socket",
                                  taken, APP))  # fmt: skip
        assert code == ExitCode.CONFIG_INVALID, err
        assert not os.path.exists(control)
    finally:
        busy.stop()


@pytest.mark.parametrize("setting", ["metrics-socket", "stats"])
def test_a_monitoring_address_in_use_exits_78_before_the_app_socket_is_bound(
    tmp_path: Path, setting: str
) -> None:
    """Issue 16: the monitoring sockets were bound after the app's (as in issue 12, 10)."""
    app_socket = tmp_path / "app.sock"  # a UNIX socket's file shows it was ever bound
    control = tmp_path / "ctl.sock"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        code, err = refused(start(tmp_path, f"--{setting}", address, "--control-socket",
                                  str(control), "--http-socket", str(app_socket), APP))  # fmt: skip
    assert code == ExitCode.CONFIG_INVALID, err
    assert err.strip().splitlines() == [
        f"sockactd: error: cannot bind {setting} {address}: Address already in use"
    ]
    assert not app_socket.exists()  # never bound
    assert not control.exists()  # claimed first, then given back
