"""A worker whose status pipe carries bytes that are not a frame (master/channels.py, Rule 3).

The master used to stop on them (a KeyError out of its loop). Now it says so once,
naming the worker, stops reading that pipe, SIGKILLs the worker and replaces it, while
the other workers serve on. Here a real worker writes the garbage (tests/apps/garbling.py)
after answering the request that asked for it.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.server import http_get, running
from tests.support import free_port, wait_until


def test_a_worker_that_garbles_its_status_pipe_is_killed_and_replaced_while_the_site_serves_on(
    tmp_path: Path,
) -> None:
    port = free_port()
    with running(tmp_path, "--http-socket", f"127.0.0.1:{port}", "--processes", "2",
                 "tests.apps.garbling:app") as srv:  # fmt: skip
        first = set(srv.worker_pids())
        status, body = http_get(port, "/garble")
        assert status == 200 and body.startswith(b"garbled by "), (status, body)
        victim = int(body.split()[-1])
        (other,) = first - {victim}
        said = (
            f"worker {victim} (generation 1) wrote garbage to its status pipe "
            "(unknown kind byte b'G'); killing it"
        )
        wait_until(lambda: said in srv.log(), 10, "the master's line")
        wait_until(lambda: victim not in srv.worker_pids(), 10, f"worker {victim} to go")
        wait_until(lambda: len(srv.serving_pids()) == 2, 20, "a replacement to serve")
        assert other in srv.serving_pids()  # untouched
        answers = [http_get(port, "/") for _ in range(20)]
        assert {status for status, _ in answers} == {200}
        assert victim not in {int(body) for _, body in answers}
        log = srv.log()
        assert log.count("wrote garbage") == 1, log  # nothing more read from that pipe
        assert f"worker {victim} (generation 1) died: killed by SIGKILL" in log, log
        assert srv.process is not None and srv.process.poll() is None  # the master serves on
