"""uWSGI's stats JSON, for uwsgitop and the dashboards and exporters made for uWSGI.

The shape is uWSGI's stats server's: top-level `version`, `listen_queue`,
`load`, `pid`, `uid`, `gid`, `cwd`, `sockets` and `workers`, each worker with
`id`, `pid`, `accepting`, `requests`, `exceptions`, `status`, `rss`, `vsz`,
`running_time` and `avg_rt` (microseconds), `last_spawn`, `respawn_count`,
`harakiri_count`, `tx` and one core. Where sockactd has no such thing the
field is there with uWSGI's neutral value (0, an empty list), so readers that
index it do not fail. Meanings that differ:
* `exceptions` counts the worker's 5xx answers;
* `status` is "busy"/"idle" for a serving worker and "cheap" for one that does
  not accept (booting, or draining before it exits);
* `respawn_count` and `harakiri_count` are per worker number, since the master started.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping

from sockactd import __version__
from sockactd.master.monitor import Answer
from sockactd.master.procinfo import memory
from sockactd.master.snapshot import Sources, in_flight, listener_queues, present_workers
from sockactd.pool import ExitReason, Worker, WorkerState
from sockactd.worker.board import STATUS_CLASSES

__all__ = ["StatsPage", "stats_data"]

_SERVER_ERRORS = STATUS_CLASSES.index("5xx")


def stats_data(sources: Sources) -> dict[str, object]:
    queues = listener_queues(sources.listeners)
    return {
        "version": __version__,
        "listen_queue": sum(q.waiting or 0 for q in queues),
        "listen_queue_errors": 0,
        "signal_queue": 0,
        "load": in_flight(sources.pool),
        "pid": os.getpid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cwd": os.getcwd(),
        "locks": [],
        "sockets": [
            {
                "name": q.address,
                "proto": q.protocol,
                "queue": q.waiting or 0,
                "max_queue": q.limit or 0,
                "shared": 0,
                "can_offload": 0,
            }
            for q in queues
        ],
        "workers": [_worker(sources, w) for w in present_workers(sources.pool)],
    }


def _worker(sources: Sources, worker: Worker) -> dict[str, object]:
    served, _, busy = worker.board.read()
    counts = worker.board.counts()
    counted = counts.total()
    rss, vsz = memory(worker.pid) or (0, 0)
    exits = sources.tally.by_number.get(worker.number) or Counter[ExitReason]()
    accepting = worker.state is WorkerState.SERVING and worker.accepting
    age = sources.monotonic() - worker.started
    return {
        "id": worker.number,
        "pid": worker.pid,
        "accepting": int(accepting),
        "requests": served,
        "delta_requests": served,
        "exceptions": sum(counts.requests[_SERVER_ERRORS :: len(STATUS_CLASSES)]),
        "harakiri_count": exits[ExitReason.HARAKIRI],
        "signals": 0,
        "signal_queue": 0,
        "status": ("busy" if busy else "idle") if accepting else "cheap",
        "rss": rss,
        "vsz": vsz,
        "running_time": counts.duration_ns // 1000,
        "last_spawn": int(sources.wall() - age),
        "respawn_count": sum(exits.values()),
        "tx": counts.tx,
        "avg_rt": counts.duration_ns // 1000 // counted if counted else 0,
        "apps": [],
        "cores": [
            {
                "id": 0,
                "requests": served,
                "static_requests": 0,
                "routed_requests": 0,
                "offloaded_requests": 0,
                "write_errors": 0,
                "read_errors": 0,
                "in_request": int(busy > 0),
                "vars": [],
                "req_info": {},
            }
        ],
        # sockactd's own, beside uWSGI's fields
        "generation": worker.generation,
        "state": worker.state.value,
    }


class StatsPage:
    """The `Page` of the stats socket: the JSON on connect, or at GET / with stats-http."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def __call__(self, path: str, headers: Mapping[str, str]) -> Answer | None:
        if path not in ("", "/"):
            return None
        body = json.dumps(stats_data(self.sources), indent=1).encode()
        return Answer(200, "application/json", body)
