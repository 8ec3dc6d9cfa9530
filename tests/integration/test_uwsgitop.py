"""uwsgitop, the real one from PyPI, reads sockactd's stats socket and shows both workers.

It is a curses program: run under a pseudo-terminal, read what it drew, quit it with `q`.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.server import http_get, running
from tests.support import child_environ, free_port, require


def _uwsgitop() -> str | None:
    beside = Path(sys.executable).with_name("uwsgitop")
    return str(beside) if beside.exists() else shutil.which("uwsgitop")


def _screen(address: str, want: set[str], seconds: float = 20.0) -> str:
    tool = _uwsgitop()
    require(tool is not None, "needs uwsgitop (pip install uwsgitop: a test dependency)")
    assert tool is not None
    leader, follower = pty.openpty()
    env = child_environ({"TERM": "xterm", "LINES": "40", "COLUMNS": "200"})
    argv = [tool, "--frequency", "1", address]
    process = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not all(w.encode() in seen for w in want):
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
        os.write(leader, b"q")
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        os.close(leader)
    return re.sub(
        r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]", " ", seen.decode(errors="replace")
    )


def test_uwsgitop_shows_both_workers(tmp_path: Path) -> None:
    port = free_port()
    stats = tmp_path / "stats.sock"
    with running(tmp_path, "--http-socket", f"127.0.0.1:{port}", "--stats", str(stats),
                 "tests.apps.site_app:app") as srv:  # fmt: skip
        for _ in range(5):
            assert http_get(port)[0] == 200
        pids = {str(pid) for pid in srv.worker_pids()}
        assert len(pids) == 2
        screen = _screen(str(stats), pids | {f"masterpid: {srv.pid}", "req: 5"})
    assert f"masterpid: {srv.pid}" in screen, screen
    assert "req: 5" in screen, screen
    for pid in pids:
        assert pid in screen, screen
    assert "Traceback" not in screen
