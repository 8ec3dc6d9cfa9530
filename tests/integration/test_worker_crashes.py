"""Workers that die while serving are replaced at once (issue 12, item 5).

The crash back-off used to be global: one client hitting a route that calls
os._exit every 0.1 s left the site without a successful response for 30 of 40
seconds, and repeated `kill -9`s of a worker took up to 5 s each to replace.
Only workers that die before they report ready (broken code) back off now.
"""

from __future__ import annotations

import http.client
import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.server import http_get
from tests.integration.test_reload_modes import start_site
from tests.support import wait_until

WINDOW = 10.0  # seconds of crashes


@dataclass(frozen=True)
class CrashRun:
    """What two clients saw while a third crashed a worker every 0.1 s for `window` seconds."""

    crashes: int  # /crash requests sent
    served: list[float]  # when each successful response arrived (monotonic), in order
    start: float
    end: float
    window: float

    def longest_gap(self) -> float:
        """The longest time without a successful response, from the start to the end."""
        marks = [self.start, *self.served, self.end]
        return max(b - a for a, b in itertools.pairwise(marks))

    def seconds_without(self) -> float:
        """The 100 ms slots of the window in which no successful response arrived."""
        slots = int(self.window * 10)
        answered = {int((t - self.start) * 10) for t in self.served} & set(range(slots))
        return (slots - len(answered)) / 10


def crash_while_serving(port: int, window: float) -> CrashRun:
    """For `window` seconds one client GETs /crash (its worker exits) every 0.1 s while
    two clients GET / back to back, a new connection each (bench/crash_client.py too)."""
    stop = threading.Event()
    served: list[float] = []
    crashes = 0

    def crasher() -> None:
        nonlocal crashes
        while not stop.wait(0.1):
            crashes += 1
            try:
                http_get(port, "/crash", timeout=5)
            except (OSError, http.client.HTTPException):
                pass  # the worker died under this request: that is the point

    def client() -> None:
        while not stop.is_set():
            try:
                if http_get(port, "/", timeout=5)[0] == 200:
                    served.append(time.monotonic())
            except (OSError, http.client.HTTPException):
                pass  # a request accepted by a worker the crasher killed

    threads = [threading.Thread(target=f, daemon=True) for f in (crasher, client, client)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    stop.wait(window)
    stop.set()
    end = time.monotonic()
    for thread in threads:
        thread.join(10)
    return CrashRun(crashes, sorted(t for t in served if t <= end), start, end, window)


def test_a_client_crashing_a_worker_every_tenth_of_a_second_leaves_no_gap_of_a_second(
    tmp_path: Path,
) -> None:
    srv, port, _site = start_site(tmp_path)
    try:
        longest = crash_while_serving(port, WINDOW).longest_gap()
        deaths = srv.log().count("died: exit 13")
        assert deaths >= WINDOW * 3, srv.log()[-3000:]  # the crasher did crash workers
        assert longest < 1.0, f"{longest:.2f}s without a successful response ({deaths} crashes)"
        assert srv.process is not None and srv.process.poll() is None
    finally:
        srv.stop()


def test_a_worker_killed_ten_times_in_a_row_is_replaced_each_time(tmp_path: Path) -> None:
    srv, port, _site = start_site(tmp_path)
    try:
        for _ in range(10):
            before = srv.serving_pids()
            victim = min(before)
            assert victim in srv.worker_pids()  # our server's child: ours to kill
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            wait_until(
                lambda victim=victim: len(srv.serving_pids() - {victim}) == 2,  # type: ignore[misc]
                5,
                "a replacement serving",
            )
            assert time.monotonic() - killed_at < 2.0, srv.log()[-2000:]
        assert http_get(port, "/")[0] == 200
    finally:
        srv.stop()
