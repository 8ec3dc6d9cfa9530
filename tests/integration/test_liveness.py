"""A stopped (SIGSTOP) idle worker is noticed and replaced, replacement first (issue 12, 11).

It used to keep its share of the listening socket and its parked connections
forever: only harakiri noticed a stopped worker, and only a busy one.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from sockactd.master.liveness import LIVENESS_TIMEOUT
from tests.integration.server import http_get
from tests.integration.test_reload_modes import start_site
from tests.support import wait_until


def test_a_stopped_idle_worker_is_replaced_and_killed_once_its_replacement_serves(
    tmp_path: Path,
) -> None:
    srv, port, _site = start_site(tmp_path)
    try:
        victim = min(srv.worker_pids())  # a child of the server we started
        os.kill(victim, signal.SIGSTOP)
        stopped_at = time.monotonic()
        # the master logs how the victim ended after it is gone from the pool: wait for both
        ended = re.compile(rf"worker {victim} \(generation 1\) (retired|died)")
        wait_until(
            lambda: victim not in srv.worker_pids() and ended.search(srv.log()) is not None,
            LIVENESS_TIMEOUT + 20,
            "the kill and its line",
        )
        assert time.monotonic() - stopped_at > LIVENESS_TIMEOUT * 0.9  # not before its time
        log = srv.log()
        assert f"worker {victim} (generation 1) has not answered its liveness check" in log
        replacement = re.search(r"worker (\d+) \(generation 1\) ready in", log.split(
            "liveness check", 1)[1])  # fmt: skip
        assert replacement is not None, log  # ready after the warning ...
        assert log.index(replacement.group(0)) < log.index(f"killing silent worker {victim}")
        assert f"worker {victim} (generation 1) retired: killed by SIGKILL" in log
        assert "died" not in log
        assert [w["state"] for w in srv.status()["workers"]] == ["serving", "serving"]  # type: ignore[union-attr]
        assert all(http_get(port, "/")[0] == 200 for _ in range(10))
    finally:
        srv.stop()
