"""control/ctl.py: the human status table (pure rendering of StatusData)."""

from __future__ import annotations

from sockactd.control.ctl import format_status
from sockactd.control.protocol import StatusData

STATUS: StatusData = {
    "phase": "reloading",
    "generation": 5,
    "uptime": 3725.0,
    "pid": 100,
    "reload": {"mode": "chain", "progress": "chain reload: 2/4 workers on generation 5"},
    "last_reload": {"ok": False, "message": "worker 7 exited (status 4)", "generation": 4},
    "workers": [
        {"pid": 101, "generation": 4, "state": "serving", "requests": 12345,
         "rss_bytes": 50 * 1024 * 1024, "uptime": 90061.0},
        {"pid": 1022, "generation": 5, "state": "booting", "requests": 0,
         "rss_bytes": None, "uptime": 2.5},
    ],
}  # fmt: skip


def test_status_table() -> None:
    assert format_status(STATUS).splitlines() == [
        "phase        reloading",
        "generation   5",
        "master pid   100",
        "uptime       1h02m",
        "reload       chain reload: 2/4 workers on generation 5",
        "last reload  FAILED (generation 4): worker 7 exited (status 4)",
        "",
        "PID   GEN  STATE    REQUESTS  RSS MiB  UPTIME",
        "101   4    serving  12345     50.0     1d01h",
        "1022  5    booting  0         -        2s",
    ]


def test_idle_server_without_workers() -> None:
    data = {"phase": "serving", "generation": 1, "uptime": 61.0, "pid": 9,
            "reload": None, "last_reload": None, "workers": []}  # fmt: skip
    lines = format_status(data).splitlines()
    assert "reload       none" in lines
    assert not any(line.startswith("last reload") for line in lines)
    assert lines[3] == "uptime       1m01s"
    assert lines[-1] == "PID  GEN  STATE  REQUESTS  RSS MiB  UPTIME"
