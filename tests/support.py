"""Helpers shared by every test directory: skips that CI turns into failures, ports, polling.

Import as `from tests.support import require, free_port, wait_until`. Nothing here
touches sockactd internals; the only process it starts is run_python's probe.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

__all__ = [
    "REQUIRE_ALL_ENV",
    "ROOT",
    "child_environ",
    "free_port",
    "port_open",
    "require",
    "run_python",
    "sockactd_argv",
    "wait_until",
]

ROOT = Path(__file__).resolve().parent.parent
REQUIRE_ALL_ENV = "SOCKACTD_REQUIRE_ALL"

# Variables that would make a child sockactd believe systemd started it, or change its config.
_INHERITED_PREFIXES = ("SOCKACTD_", "LISTEN_", "NOTIFY_SOCKET", "WATCHDOG_", "JOURNAL_STREAM")


def require(condition: bool, reason: str) -> None:
    """Skip the calling test unless `condition` holds; fail instead when CI demands everything.

    Use for missing tools, privileges or modules: `require(shutil.which("nginx") is not None,
    "needs nginx")`. With SOCKACTD_REQUIRE_ALL=1 a missing requirement is a failure, so CI
    cannot go green by skipping.
    """
    if condition:
        return
    if os.environ.get(REQUIRE_ALL_ENV) == "1":
        pytest.fail(f"{reason} (required: {REQUIRE_ALL_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listened on a moment ago (the usual small race is accepted)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    """True when an IPv4 TCP socket listens on `port`, judged without connecting.

    A probe connection would itself start a socket-activated service; the kernel's
    socket table (/proc/net/tcp, state 0A = LISTEN) answers without touching it.
    """
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def wait_until(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.01
) -> None:
    """Poll `predicate` until it returns something true; AssertionError naming `what` if not.

    `predicate` is always tried at least once, and once more after the deadline passes,
    so a slow machine gets the benefit of the doubt exactly once.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            if predicate():
                return
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def sockactd_argv(*args: str) -> list[str]:
    """The command line that runs this checkout's sockactd with the test interpreter."""
    return [sys.executable, "-m", "sockactd", *args]


def child_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ minus systemd/sockactd variables, this checkout importable, plus `extra`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    paths = [str(ROOT), *filter(None, environ.get("PYTHONPATH", "").split(os.pathsep))]
    environ["PYTHONPATH"] = os.pathsep.join(paths)
    environ.update(extra or {})
    return environ


def run_python(
    code: str, *options: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (this checkout importable); fail if it fails.

    For probes of what a process loads or prints on its own, away from pytest's state.
    `options` go before -c (e.g. "-S"); `env` adds to child_environ().
    """
    return subprocess.run(
        [sys.executable, *options, "-c", code],
        env=child_environ(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
