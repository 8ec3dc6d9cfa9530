"""Back-to-back chain reloads with 8 workers under load, for about a minute (issue 12, item 1).

Workers exit, are forked and become ready all the time here, so reaps, spawns
and READY frames keep landing in one select() batch of the master: before the
master's events carried identity, about one reload in 100-300 either killed the
master (a dead worker's stale event read a new worker's board) or hung until
ready-timeout (it ate a new worker's READY). What an operator checks: every
reload succeeds, no request fails, the master is the same process at the end.
The 300-reload run of the same scenario is bench/chain_endurance.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.server import Load, Server
from tests.integration.test_reload_modes import start_site

BUDGET = 50.0  # seconds of reloads; the load and the checks add a few more


@contextmanager
def draining_notifications(srv: Server) -> Iterator[None]:
    """Read the notify socket all along, as systemd does: a datagram socket's queue holds
    10 messages, and a master whose STATUS= updates nobody reads blocks in sendto()."""
    assert srv.notify is not None
    notify, stop = srv.notify, threading.Event()

    def drain() -> None:
        while not stop.wait(0.01):
            notify.poll()

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def test_back_to_back_chain_reloads_with_8_workers_under_load(tmp_path: Path) -> None:
    srv, port, _site = start_site(tmp_path, "--processes", "8", "--ready-timeout", "20")
    try:
        master = srv.pid
        failed: list[str] = []
        reloads = 0
        with draining_notifications(srv), Load(port, threads=4, limit=BUDGET + 40) as load:
            load.wait_requests(50)
            end = time.monotonic() + BUDGET
            while time.monotonic() < end:
                result = srv.ctl("reload", "--mode", "chain", "--wait")
                reloads += 1
                if result.returncode != 0:
                    failed.append(result.stderr.strip())
                    break
            load.wait_requests(50)
        assert failed == [], f"{failed} after {reloads} reloads\n{srv.log()[-4000:]}"
        assert srv.process is not None and srv.process.poll() is None, srv.log()[-4000:]
        assert srv.pid == master
        assert load.failures == {}, load.failures
        status = srv.status()
        assert status["generation"] == reloads + 1
        assert len(status["workers"]) == 8  # type: ignore[arg-type]
    finally:
        srv.stop()
