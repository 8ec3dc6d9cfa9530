"""master/respawn.py: broken code backs off, a crashing request is replaced at once."""

from __future__ import annotations

import pytest

from sockactd.master.respawn import MAX_BACKOFF, SERVING_RESPAWNS_PER_SECOND, RespawnPolicy


@pytest.mark.parametrize(
    ("failures_at", "expected_delays"),
    [
        ([0.0], [0.0]),
        ([0.0, 0.1, 0.3, 0.7], [0.0, 0.1, 0.2, 0.4]),  # doubles while the streak lasts
        ([0.0, 0.1, 20.0], [0.0, 0.1, 0.0]),  # a quiet YOUNG period ends the streak
        ([float(t) for t in range(12)], [0.0] + [min(0.1 * 2**i, MAX_BACKOFF) for i in range(11)]),
    ],
)
def test_boot_failures_back_off(failures_at: list[float], expected_delays: list[float]) -> None:
    policy = RespawnPolicy()
    delays = [policy.boot_failed(now) for now in failures_at]
    assert delays == pytest.approx(expected_delays)
    assert policy.next_spawn == pytest.approx(failures_at[-1] + expected_delays[-1])


def test_serving_workers_that_die_are_replaced_at_once() -> None:
    policy = RespawnPolicy()
    for i in range(50):  # a client crashing a worker every 0.1 s, for 5 s, 2 workers
        now = 100.0 + i * 0.1
        assert policy.serving_died(now, size=2) is False
        assert policy.next_spawn <= now


def test_serving_deaths_do_not_inherit_a_boot_back_off_streak() -> None:
    policy = RespawnPolicy()
    for now in (0.0, 0.1, 0.2, 0.3):
        policy.boot_failed(now)
    backed_off_until = policy.next_spawn
    policy.serving_died(30.0, size=2)
    assert policy.next_spawn == backed_off_until < 30.0


def test_a_serving_crash_loop_is_paced_to_the_cap() -> None:
    policy = RespawnPolicy()
    cap = SERVING_RESPAWNS_PER_SECOND * 2
    deaths = [10.0 + i * 0.001 for i in range(cap)]
    assert [policy.serving_died(now, size=2) for now in deaths] == [False] * cap
    assert policy.serving_died(10.5, size=2) is True
    assert policy.next_spawn == pytest.approx(11.0)  # when the first of that second is 1 s old
    assert policy.serving_died(12.0, size=2) is False  # the window moved on
