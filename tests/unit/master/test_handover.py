"""The standard reload's handover record: what one image of the master tells the next."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from sockactd.master.handover import Handover, WorkerRecord, take_handover
from sockactd.modes import ReloadMode
from sockactd.pool import WorkerState
from sockactd.systemd.activation import HANDOVER_ENV
from sockactd.worker.board import Board


def record(**changes: object) -> Handover:
    values: dict[str, object] = {
        "generation": 7,
        "workers": (
            WorkerRecord(1001, 7, WorkerState.SERVING, 10, 11, 123.5, accepting=True),
            WorkerRecord(1002, 6, WorkerState.DRAINING, 12, 13, 99.0, True, kill_deadline=159.0),
        ),
        "control_fd": 5,
        "waiting_fds": (20, 21),
        "queued": (ReloadMode.CHAIN, ReloadMode.WORKERS),
        "started_wall": 1_700_000_000.25,
        "tally": {"exits": {"crash": 2}, "reload_began": 4.0},
    }
    values.update(changes)
    return Handover(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "handover",
    [record(), record(control_fd=None, waiting_fds=(), queued=(), workers=(), tally={})],
)
def test_the_record_survives_its_trip_through_the_environment(handover: Handover) -> None:
    assert Handover.from_json(handover.to_json()) == handover


def test_the_queued_modes_travel_by_name() -> None:
    assert json.loads(record().to_json())["queued"] == ["chain", "workers"]


def test_renumbering_follows_the_fds_that_moved_for_the_listeners() -> None:
    moved = record().renumbered({10: 110, 20: 120, 5: 105})
    assert [(w.status_fd, w.board_fd) for w in moved.workers] == [(110, 11), (12, 13)]
    assert moved.control_fd == 105 and moved.waiting_fds == (120, 21)
    assert moved.fds() == [110, 11, 12, 13, 105, 120, 21]
    assert record(control_fd=None).renumbered({}).control_fd is None


@pytest.fixture
def board() -> Iterator[Board]:
    board = Board.create()
    yield board
    board.close()


def test_a_worker_record_becomes_the_same_worker_in_the_new_image(board: Board) -> None:
    from sockactd.pool import Worker

    worker = Worker(pid=1001, generation=3, status_fd=9, board=board, started=42.0)
    worker.state, worker.accepting, worker.kill_deadline = WorkerState.DRAINING, True, 102.0
    again = WorkerRecord.of(worker).to_worker()
    assert (again.pid, again.generation, again.state, again.status_fd, again.started) == (
        1001, 3, WorkerState.DRAINING, 9, 42.0,
    )  # fmt: skip
    # Retired but its D frame not read yet: the reload waits for it, and its mercy still holds.
    assert (again.accepting, again.kill_deadline) == (True, 102.0)
    assert again.board.fd == board.fd
    again.board._map.close()  # the fixture closes the fd


def test_a_record_from_an_image_that_did_not_say_whether_a_worker_accepts() -> None:
    data = json.loads(record().to_json())
    for worker in data["workers"]:
        del worker["accepting"], worker["kill_deadline"]
    older = Handover.from_json(json.dumps(data))
    assert [(w.state, w.accepting, w.kill_deadline) for w in older.workers] == [
        (WorkerState.SERVING, True, None),  # a serving worker accepts
        (WorkerState.DRAINING, False, None),  # as that image counted it
    ]


def test_take_handover_reads_and_removes_the_variable_and_makes_fds_close_on_exec() -> None:
    status_r, status_w = os.pipe()
    board_fd = os.memfd_create("board")
    for fd in (status_r, board_fd):
        os.set_inheritable(fd, True)
    try:
        worker = WorkerRecord(1001, 2, WorkerState.SERVING, status_r, board_fd, 1.0)
        handover = record(workers=(worker,))
        environ = {HANDOVER_ENV: handover.to_json(), "PATH": "/bin"}
        assert take_handover(environ) == handover
        assert environ == {"PATH": "/bin"}  # the workers it forks never see it
        assert not os.get_inheritable(status_r) and not os.get_inheritable(board_fd)
        assert not os.get_blocking(status_r)
    finally:
        for fd in (status_r, status_w, board_fd):
            os.close(fd)


def test_a_normal_start_has_no_handover() -> None:
    assert take_handover({"PATH": "/bin"}) is None
