"""bench/closedloop.py analysis: pure functions, table tests."""

from __future__ import annotations

import pytest

from bench.closedloop import Record, percentile, summarize


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.99, 0.0),
        ([5.0], 0.5, 5.0),
        ([3.0, 1.0, 2.0, 4.0], 0.5, 2.0),
        ([*range(100)], 0.99, 98),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], fraction: float, expected: float) -> None:
    assert percentile(values, fraction) == expected


def test_summary_counts_the_window_the_starved_and_the_workers() -> None:
    records = [
        Record(0, 0.5, 0.6, "w1"),  # warm-up: left out
        Record(0, 1.0, 1.1, "w1"),
        Record(0, 1.2, 1.5, "w1"),
        Record(0, 1.6, 1.7, "w2"),
        Record(1, 1.0, 2.0, "w2"),
        Record(1, 2.0, 2.1, "", "timeout"),
        Record(1, 3.0, 3.1, "w2"),  # after the window: left out
    ]
    summary = summarize(records, clients=3, start=1.0, stop=3.0)
    assert summary.requests_per_s == 2.0
    assert summary.max_ms == pytest.approx(1000.0)
    assert (summary.client_min, summary.client_max) == (0, 3)  # client 2 got nothing
    assert summary.client_ratio == float("inf")
    assert summary.per_worker == (2, 2)
    assert summary.clients_per_worker == (1, 1)
    assert summary.errors == {"timeout": 1}


def test_connections_count_by_first_answer_over_the_whole_run() -> None:
    records = [
        Record(0, 0.1, 0.2, "w1", "", fresh=True),  # warm-up: a connection all the same
        Record(0, 1.0, 1.1, "w2"),  # the same connection, handed over: not a new one
        Record(1, 1.0, 1.1, "w2", "", fresh=True),
        Record(2, 1.0, 1.1, "w2", "", fresh=True),
        Record(3, 1.0, 1.1, "", "reset"),  # never answered: no worker to count
    ]
    summary = summarize(records, clients=4, start=1.0, stop=2.0)
    assert summary.connections_per_worker == (2, 1)
