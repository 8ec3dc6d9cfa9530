"""Keep-alive connections spread over idle workers instead of piling onto the first one.

serve() in two forked children sharing one listener (EPOLLEXCLUSIVE). Linux wakes
the first idle worker in the listener's wait queue, in the order the workers
registered: without more, the first-registered worker takes every connection that
arrives while it is idle, and a keep-alive connection stays where it was accepted.
"""

from __future__ import annotations

import http.client
from collections import Counter
from pathlib import Path

import pytest

from tests.apps import echo
from tests.integration.serve_child import serving
from tests.support import wait_until

_CLIENTS = 20


def _waiting(pids: list[int]) -> bool:
    """Every worker asleep in epoll_wait: idle, and back in the listener's wait queue."""
    return all(Path(f"/proc/{pid}/wchan").read_text() == "do_epoll_wait" for pid in pids)


@pytest.mark.parametrize("threads", [1, 2])
def test_keep_alive_connections_spread_over_idle_workers(threads: int) -> None:
    with serving(echo.app, workers=2, threads=threads) as served:
        conns: list[http.client.HTTPConnection] = []
        served_by = []
        try:
            for _ in range(_CLIENTS):
                wait_until(lambda: _waiting(served.pids), 10, "both workers idle")
                conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
                conns.append(conn)
                conn.request("GET", "/")
                response = conn.getresponse()
                response.read()
                served_by.append(response.getheader("X-Pid"))
            # each connection is still open, parked on the worker that served it
            per_worker = Counter(served_by)
            assert set(per_worker) == {str(pid) for pid in served.pids}, per_worker
            assert all(_CLIENTS * 0.4 <= n <= _CLIENTS * 0.6 for n in per_worker.values()), (
                per_worker
            )
        finally:
            for conn in conns:
                conn.close()
