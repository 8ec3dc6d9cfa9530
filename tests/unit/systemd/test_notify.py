"""systemd/notify.py without a socket: enablement, watchdog interval, lean imports.

Real datagrams are in tests/integration/test_notify_socket.py.
"""

from __future__ import annotations

import os

import pytest

from sockactd.systemd.notify import Backend, Notifier, watchdog_interval
from tests.support import run_python

ME = str(os.getpid())


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, None, id="unset"),
        pytest.param({"WATCHDOG_USEC": "2000000"}, 1.0, id="no-pid"),
        pytest.param({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": ME}, 15.0, id="our-pid"),
        pytest.param({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None, id="other-pid"),
        pytest.param({"WATCHDOG_USEC": "0"}, None, id="zero"),
        pytest.param({"WATCHDOG_USEC": "soon"}, None, id="garbage"),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(environ) == expected


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        pytest.param({}, False, id="unset"),
        pytest.param({"NOTIFY_SOCKET": ""}, False, id="empty"),
        pytest.param({"NOTIFY_SOCKET": "relative/path"}, False, id="not-an-address"),
        pytest.param({"NOTIFY_SOCKET": "/run/systemd/notify"}, True, id="path"),
        pytest.param({"NOTIFY_SOCKET": "@abstract"}, True, id="abstract"),
    ],
)
@pytest.mark.parametrize("backend", Backend.members())
def test_enabled_only_with_a_socket_address(
    environ: dict[str, str], enabled: bool, backend: Backend
) -> None:
    notifier = Notifier.from_environ(environ, backend=backend)
    assert notifier.enabled is enabled
    assert notifier.backend is (backend if enabled else None)
    notifier.ready("no-op when disabled, nothing raised")
    notifier.close()


def test_backend_is_chosen_once_and_prefers_libsystemd() -> None:
    # systemd-python is installed in the test environment (pyproject extra [systemd])
    assert Notifier("@x").backend is Backend.LIBSYSTEMD


def test_start_up_imports_stay_lean() -> None:
    """Importing these modules must not pull in systemd-python, sdnotify or pyinotify."""
    probe = (
        "import sys\n"
        "import sockactd.sockets, sockactd.systemd.activation, sockactd.systemd.notify\n"
        "import sockactd.triggers.base\n"
        "heavy = ('systemd.daemon', 'sdnotify', 'pyinotify', 'asyncore')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    assert run_python(probe).stdout.strip() == "[]"
