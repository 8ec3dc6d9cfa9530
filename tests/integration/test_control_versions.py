"""sockactctl and sockactd of different versions: they work together, or say they differ.

The server is the real one of this checkout. The other side is a copy of this
checkout's package with another version number (and, for the incompatible case,
a newer control protocol), run as a real `python -m sockactd ctl` process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from sockactd import __version__
from sockactd.control.protocol import PROTOCOL_VERSION
from sockactd.errors import ExitCode
from tests.integration.server import Server, running
from tests.support import ROOT, child_environ


def other_client(tmp_path: Path, version: str, protocol: int = PROTOCOL_VERSION) -> Path:
    copy = tmp_path / f"sockactd-{version}"
    shutil.copytree(ROOT / "sockactd", copy / "sockactd")
    init = copy / "sockactd" / "__init__.py"
    init.write_text(init.read_text().replace(f'"{__version__}"', f'"{version}"'))
    proto = copy / "sockactd" / "control" / "protocol.py"
    text = proto.read_text()
    proto.write_text(text.replace(f"PROTOCOL_VERSION: Final = {PROTOCOL_VERSION}",
                                  f"PROTOCOL_VERSION: Final = {protocol}"))  # fmt: skip
    return copy


def ctl_from(copy: Path, srv: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_environ({"PYTHONPATH": str(copy)})
    argv = [sys.executable, "-m", "sockactd", "ctl", "--control-socket", srv.control, *args]
    return subprocess.run(
        argv, env=env, cwd=copy, capture_output=True, text=True, timeout=60, check=False
    )


def test_same_versions_say_nothing_about_versions(tmp_path: Path) -> None:
    with running(tmp_path, "--http-socket", "127.0.0.1:0", "tests.apps.hello:app") as srv:
        result = srv.ctl("status")
        assert result.returncode == 0 and "versions differ" not in result.stderr, result
        version = srv.ctl("--version")
        assert version.stdout.strip() == (
            f"sockactctl {__version__} (control protocol {PROTOCOL_VERSION})"
        )


def test_another_version_with_the_same_protocol_works_and_says_they_differ(
    tmp_path: Path,
) -> None:
    copy = other_client(tmp_path, "0.0.7")
    with running(tmp_path, "--http-socket", "127.0.0.1:0", "--lazy-apps",
                 "tests.apps.hello:app") as srv:  # fmt: skip
        status = ctl_from(copy, srv, "status", "--json")
        assert status.returncode == 0, status
        assert json.loads(status.stdout)["pid"] == srv.pid
        reload = ctl_from(copy, srv, "reload", "--mode", "workers", "--wait")
        assert reload.returncode == 0, reload
        for result in (status, reload):
            assert "versions differ: this sockactctl is 0.0.7" in result.stderr
            assert f"the server runs sockactd {__version__}" in result.stderr


def test_a_newer_protocol_is_refused_with_both_versions_named(tmp_path: Path) -> None:
    copy = other_client(tmp_path, "9.0.0", protocol=PROTOCOL_VERSION + 1)
    with running(tmp_path, "--http-socket", "127.0.0.1:0", "--lazy-apps",
                 "tests.apps.hello:app") as srv:  # fmt: skip
        result = ctl_from(copy, srv, "reload", "--wait")
        assert result.returncode == ExitCode.CONTROL_FAILED, result
        assert (
            f"versions differ: the client (sockactd 9.0.0) speaks control protocol "
            f"{PROTOCOL_VERSION + 1}, this server (sockactd {__version__}) speaks protocol "
            f"{PROTOCOL_VERSION}"
        ) in result.stderr
        assert srv.status()["last_reload"] is None  # nothing was done
