"""The master's own counts: reloads, and what crosses a standard reload's execve."""

from __future__ import annotations

from sockactd.master.tally import Tally
from sockactd.modes import ReloadMode
from sockactd.pool import ExitReason
from sockactd.worker.board import Counts


def test_reloads_are_counted_by_mode_and_outcome_with_the_last_duration() -> None:
    tally = Tally()
    tally.reload_started(10.0)
    tally.reload_finished(ReloadMode.CHAIN, ok=True, now=12.5, wall=1000.0)
    tally.reload_started(20.0)
    tally.reload_finished(ReloadMode.WORKERS, ok=False, now=21.0, wall=2000.0)
    assert tally.reloads == {(ReloadMode.CHAIN, "done"): 1, (ReloadMode.WORKERS, "aborted"): 1}
    assert tally.last_reload_seconds == 1.0
    assert tally.last_success_wall == 1000.0  # the failed one does not move it


def test_everything_survives_the_handover() -> None:
    tally = Tally()
    tally.exits[ExitReason.MEMORY] = 3
    tally.requests = Counts(tuple(range(len(Counts().to_json()))))
    tally.reloads[ReloadMode.STANDARD, "done"] = 2
    tally.reload_started(50.0)  # a standard reload hands over while it runs
    copy = Tally.from_json(tally.to_json())
    assert copy.exits == tally.exits
    assert copy.requests.to_json() == tally.requests.to_json()
    assert copy.reloads == tally.reloads
    copy.reload_started(60.0)  # the new image's half of the same reload
    copy.reload_finished(ReloadMode.STANDARD, ok=True, now=61.0, wall=5.0)
    assert copy.last_reload_seconds == 11.0  # measured from where it began, in the old image


def test_an_unreadable_handover_starts_from_zero() -> None:
    assert Tally.from_json({}).reloads == {}
    assert Tally.from_json({"exits": {"no-such-reason": 1}}).exits == {}


def test_a_reload_mode_the_new_image_does_not_know_is_dropped_and_the_rest_kept() -> None:
    tally = Tally()
    tally.reloads[ReloadMode.CHAIN, "done"] = 4
    data = tally.to_json()
    assert data["reloads"] == [["chain", "done", 4]]  # by name across the execve
    data["reloads"] = [*data["reloads"], ["rolling", "done", 1], ["chain", "maybe", 2]]
    assert Tally.from_json(data).reloads == {(ReloadMode.CHAIN, "done"): 4}
