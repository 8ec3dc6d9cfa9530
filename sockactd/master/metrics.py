"""Prometheus metrics of the whole server, rendered by prometheus_client on each scrape.

Imported only when a metrics socket exists (prometheus_client with it): never on
the start-up path of a server without one. Every value is read at scrape time
from the master's own state (snapshot.Sources), so nothing here is updated on
the request path; the workers' share is on their boards (worker/board.py).

Names follow Prometheus's conventions: `sockactd_` prefix, base units
(`_seconds`, `_bytes`), `_total` on counters. Counters belong to the master and
reset only when it does (a standard reload hands them over). Series with a
closed set of labels (exit reasons, reload modes and outcomes, worker states)
are always all present, at 0 until something happens.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder

from sockactd import __version__
from sockactd.master.monitor import Answer
from sockactd.master.snapshot import (
    Sources,
    in_flight,
    listener_queues,
    present_workers,
    request_counts,
)
from sockactd.master.tally import OUTCOMES
from sockactd.modes import ReloadMode
from sockactd.pool import ExitReason, WorkerState
from sockactd.worker.board import DURATION_BUCKETS, PROTOCOLS, STATUS_CLASSES

__all__ = ["MetricsPage"]

PATH = "/metrics"


class _Collector:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        yield from self._requests()
        yield from self._workers()
        yield from self._reloads()
        yield from self._sockets()
        yield from self._identity()

    def _requests(self) -> Iterator[Metric]:
        counts = request_counts(self.sources)
        requests = CounterMetricFamily(
            "sockactd_requests", "Requests answered, by protocol and status class.",
            labels=["protocol", "status"],
        )  # fmt: skip
        for p, protocol in enumerate(PROTOCOLS):
            for c, status in enumerate(STATUS_CLASSES):
                requests.add_metric(
                    [protocol, status], counts.requests[p * len(STATUS_CLASSES) + c]
                )
        yield requests
        cumulative, buckets = 0, []
        for bound, count in zip((*DURATION_BUCKETS, float("inf")), counts.buckets, strict=True):
            cumulative += count
            buckets.append((_le(bound), cumulative))
        yield HistogramMetricFamily(
            "sockactd_request_duration_seconds",
            "Time from calling the application to the end of its response.",
            buckets=buckets, sum_value=counts.duration_ns / 1e9,
        )  # fmt: skip
        yield CounterMetricFamily(
            "sockactd_response_body_bytes", "Response body bytes written.", value=counts.tx
        )
        yield GaugeMetricFamily(
            "sockactd_requests_in_flight", "Requests being served now.",
            value=in_flight(self.sources.pool),
        )  # fmt: skip

    def _workers(self) -> Iterator[Metric]:
        pool, tally = self.sources.pool, self.sources.tally
        states = GaugeMetricFamily("sockactd_workers", "Worker processes by state.",
                                   labels=["state"])  # fmt: skip
        for state in (WorkerState.BOOTING, WorkerState.SERVING, WorkerState.DRAINING):
            states.add_metric([state.value], len(pool.in_state(state)))
        yield states
        yield GaugeMetricFamily(
            "sockactd_workers_configured", "Workers the master keeps.", value=pool.size
        )
        exits = CounterMetricFamily("sockactd_worker_exits", "Workers gone, by why they left.",
                                    labels=["reason"])  # fmt: skip
        for reason in ExitReason:
            exits.add_metric([reason.value], tally.exits[reason])
        yield exits
        rss = GaugeMetricFamily(
            "sockactd_worker_resident_memory_bytes", "Resident set size of each worker.",
            labels=["worker", "pid", "generation"],
        )  # fmt: skip
        for worker in present_workers(pool):
            size = self.sources.memory(worker.pid)
            if size is not None:
                rss.add_metric([str(worker.number), str(worker.pid), str(worker.generation)], size)
        yield rss

    def _reloads(self) -> Iterator[Metric]:
        pool, tally = self.sources.pool, self.sources.tally
        reloads = CounterMetricFamily("sockactd_reloads", "Reloads by mode and outcome.",
                                      labels=["mode", "outcome"])  # fmt: skip
        for mode in ReloadMode.members():
            for outcome in OUTCOMES:
                reloads.add_metric([mode.value, outcome], tally.reloads[mode, outcome])
        yield reloads
        if tally.last_reload_seconds is not None:
            yield GaugeMetricFamily(
                "sockactd_last_reload_duration_seconds",
                "How long the last reload took, whatever its outcome.",
                value=tally.last_reload_seconds,
            )
        if tally.last_success_wall is not None:
            yield GaugeMetricFamily(
                "sockactd_last_successful_reload_timestamp_seconds",
                "When the last successful reload finished (Unix time).",
                value=tally.last_success_wall,
            )
        yield GaugeMetricFamily(
            "sockactd_generation", "The worker generation that serves.", value=pool.generation
        )

    def _sockets(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "sockactd_listen_queue_length",
            "Connections waiting to be accepted (TCP_INFO; sock_diag for UNIX sockets).",
            labels=["listener", "protocol"],
        )
        limit = GaugeMetricFamily("sockactd_listen_queue_limit", "The accept queue's limit.",
                                  labels=["listener", "protocol"])  # fmt: skip
        for queue in listener_queues(self.sources.listeners):
            if queue.waiting is not None and queue.limit is not None:
                waiting.add_metric([queue.address, queue.protocol], queue.waiting)
                limit.add_metric([queue.address, queue.protocol], queue.limit)
        yield waiting
        yield limit

    def _identity(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("sockactd_build_info", "sockactd's and Python's versions.",
                                 labels=["version", "python"])  # fmt: skip
        info.add_metric([__version__, platform.python_version()], 1)
        yield info
        yield GaugeMetricFamily(
            "sockactd_start_time_seconds",
            "When the master started (Unix time; kept across standard reloads).",
            value=self.sources.started_wall,
        )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class MetricsPage:
    """The `Page` of the metrics socket: GET /metrics, text or OpenMetrics as asked."""

    def __init__(self, sources: Sources) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(sources))
        # The master's own process_* series: CPU, memory, fds, and process_start_time_seconds.
        ProcessCollector(pid=lambda: os.getpid(), registry=self.registry)

    def __call__(self, path: str, headers: Mapping[str, str]) -> Answer | None:
        if path != PATH:
            return None
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        return Answer(200, content_type, encoder(self.registry))
