"""triggers/base.py: burst coalescing as a table, rules from the config, lazy backend import."""

from __future__ import annotations

import pytest

from sockactd.config.model import Config
from sockactd.modes import ReloadMode
from sockactd.triggers.base import Debouncer, rules_from_config
from sockactd.triggers.opener import open_trigger_watcher

# (events as (mode, time), polls as (time, modes expected due then))
CASES = [
    pytest.param([("chain", 0.0)], [(0.1, []), (0.2, ["chain"]), (0.3, [])], id="single"),
    pytest.param(
        [("chain", t / 100) for t in range(50)],
        [(0.5, []), (0.68, []), (0.7, ["chain"]), (5.0, [])],
        id="burst-is-one",
    ),
    pytest.param(
        [("standard", 0.0), ("chain", 0.1)],
        [(0.2, ["standard"]), (0.29, []), (0.31, ["chain"])],
        id="modes-independent",
    ),
    pytest.param(
        [("workers", 0.0), ("chain", 0.0)],
        [(0.2, ["workers", "chain"])],
        id="two-modes-at-once",
    ),
    pytest.param(
        [("chain", t / 10) for t in range(100)],
        [(4.9, []), (5.0, ["chain"]), (5.05, [])],
        id="endless-burst-capped",
    ),
    pytest.param(
        [("chain", 0.0), ("chain", 1.0)],
        [(0.2, ["chain"]), (1.1, []), (1.2, ["chain"])],
        id="two-bursts-two-reloads",
    ),
]


@pytest.mark.parametrize(("events", "polls"), CASES)
def test_debouncer(events: list[tuple[str, float]], polls: list[tuple[float, list[str]]]) -> None:
    debouncer = Debouncer(quiet=0.2, max_burst=5.0)
    pending = sorted(events, key=lambda event: event[1])
    for now, expected in polls:
        while pending and pending[0][1] <= now:
            mode, at = pending.pop(0)
            debouncer.note(mode, at)
        assert debouncer.due(now) == expected, f"at {now}"


def test_next_deadline_is_the_earliest_due_time() -> None:
    debouncer = Debouncer(quiet=0.2, max_burst=5.0)
    assert debouncer.next_deadline() is None
    debouncer.note("chain", 1.0)
    debouncer.note("standard", 1.1)
    assert debouncer.next_deadline() == pytest.approx(1.2)
    assert debouncer.due(1.2) == ["chain"]
    assert debouncer.next_deadline() == pytest.approx(1.3)


def test_rules_from_config() -> None:
    config = Config(
        touch_reload=["/a/reload"],
        touch_workers_reload=["/a/workers", "/b/workers"],
        touch_chain_reload=["/a/chain"],
    )
    assert rules_from_config(config) == [
        ("/a/reload", ReloadMode.STANDARD),
        ("/a/workers", ReloadMode.WORKERS),
        ("/b/workers", ReloadMode.WORKERS),
        ("/a/chain", ReloadMode.CHAIN),
    ]


def test_no_rules_no_watcher() -> None:
    assert open_trigger_watcher([]) is None
