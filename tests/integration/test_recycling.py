"""Recycling under load: reload-on-rss with an app that leaks a known amount, lifetimes, the
hard memory limit. Real server, real clients; what an operator would check: no request fails,
memory stays bounded, one log line per recycle."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from tests.integration.server import Load, http_get, running
from tests.support import free_port, wait_until

LEAKY = "tests.apps.leaky:app"
MIB = 1024 * 1024
LEAK = 2 * MIB  # tests/apps/leaky.py's default
SLACK = MIB // 2  # what writing a response may add besides the leak


def test_reload_on_rss_keeps_every_worker_under_the_limit_plus_one_request(
    tmp_path: Path,
) -> None:
    port, limit_mib = free_port(), 40
    limit = limit_mib * MIB
    with running(tmp_path, "--http-socket", f"127.0.0.1:{port}", "--processes", "2",
                 "--reload-on-rss", str(limit_mib), LEAKY) as srv:  # fmt: skip
        with Load(port, threads=4, limit=60, keep_bodies=True) as load:
            wait_until(lambda: srv.log().count("reload-on-rss:") >= 6, 45, "6 recycles")
        by_pid: dict[int, list[dict[str, int]]] = defaultdict(list)
        for body in load.bodies:
            by_pid[int(body["pid"])].append(body)  # type: ignore[arg-type,call-overload]
        crossed = {pid for pid, bodies in by_pid.items() if any(b["rss"] > limit for b in bodies)}
        # A worker checks its RSS after it answered (connection.py): the client may hold the
        # answer that crossed the limit before the worker's line is written. Wait for it.
        wait_until(lambda: crossed <= {int(pid) for pid, _ in _rss_lines(srv.log(), limit_mib)},
                   10, "a line from every worker that crossed")  # fmt: skip
        log = srv.log()
        wait_until(lambda: len(srv.status()["workers"]) == 2, 10, "two workers again")  # type: ignore[arg-type]
    assert load.failures == {}
    # Every answer reports the worker's RSS after its leak: never past one request's growth.
    assert max(int(b["rss"]) for b in load.bodies) <= limit + LEAK + SLACK  # type: ignore[call-overload]
    for pid in crossed:  # the request that crossed the limit was its last
        bodies = sorted(by_pid[pid], key=lambda b: b["count"])
        assert [b["rss"] > limit for b in bodies].count(True) == 1, bodies
        assert bodies[-1]["rss"] > limit
    # One log line per recycle, naming the worker, its RSS and the limit; as many as crossed.
    lines = _rss_lines(log, limit_mib)
    assert {int(pid) for pid, _ in lines} == crossed
    assert len(lines) == len(crossed)
    # What the leak predicts: a worker lives ceil((limit - RSS after its first request) / leak)
    # more requests, give or take the page rounding of one.
    for pid in crossed:
        bodies = sorted(by_pid[pid], key=lambda b: b["count"])
        if bodies[0]["count"] != 1:
            continue  # its first answers went to a client we did not record (none here)
        predicted = 1 + -(-(limit - bodies[0]["rss"]) // LEAK)
        assert abs(bodies[-1]["count"] - predicted) <= 1, (bodies[-1], predicted)


def _rss_lines(log: str, limit_mib: int) -> list[tuple[str, str]]:
    """(pid, RSS in MiB) of each "worker N stopping (reload-on-rss: ...)" line in `log`."""
    said = rf"worker (\d+) stopping \(reload-on-rss: RSS ([\d.]+) MiB over the {limit_mib} MiB"
    said += r" limit\)"
    found: list[tuple[str, str]] = re.findall(said, log)
    return found


def test_max_worker_lifetime_recycles_with_the_delta_and_no_request_fails(
    tmp_path: Path,
) -> None:
    port = free_port()
    args = ["--http-socket", f"127.0.0.1:{port}", "--processes", "2",
            "--max-worker-lifetime", "1", "--max-worker-lifetime-delta", "1.5"]  # fmt: skip
    with running(tmp_path, *args, "tests.apps.site_app:app") as srv:
        first = set(srv.worker_pids())
        with Load(port, threads=2, limit=30) as load:
            wait_until(lambda: not first & set(srv.worker_pids()), 20, "both workers recycled")
        log = srv.log()
    assert load.failures == {}
    lifetimes = re.findall(r"recycling worker (\d+): \d+ s old \(max-worker-lifetime ([\d.]+) s\)",
                           log)  # fmt: skip
    # worker 1 lives 1 + 1 * 1.5 s, worker 2 lives 1 + 2 * 1.5 s: they do not leave together
    assert {limit for _, limit in lifetimes} >= {"2.5", "4"}


def test_evil_reload_on_rss_kills_the_worker_and_it_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    with running(tmp_path, "--http-socket", f"127.0.0.1:{port}", "--processes", "1",
                 "--evil-reload-on-rss", "30", LEAKY) as srv:  # fmt: skip
        (first,) = srv.worker_pids()

        def killed() -> bool:
            try:
                http_get(port)
            except OSError:
                pass  # the request the kill cut short: the hard limit's price
            return "evil-reload-on-rss: killing worker" in srv.log()

        wait_until(killed, 30, "the hard memory limit")
        wait_until(lambda: first not in srv.worker_pids() and len(srv.worker_pids()) == 1,
                   10, "a replacement")  # fmt: skip
        assert http_get(port)[0] == 200
        assert re.search(rf"killing worker {first}: RSS [\d.]+ MiB over the 30 MiB limit",
                         srv.log())  # fmt: skip
        assert f"worker {first} (generation 1) died" not in srv.log()  # expected, not a crash
