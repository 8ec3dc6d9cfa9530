"""Standard reload: re-execute the master in place and let the new image take over.

Same PID (systemd's MainPID never changes), so the old workers stay our
children and the listening sockets stay open. The old image writes a `Handover`
record into the environment variable HANDOVER_ENV (JSON): the serving
generation, each worker's pid, generation, state, status-pipe fd and board fd,
whether it may still accept (no D frame read yet) and its kill deadline, the
control socket and the connections waiting for this reload's outcome, queued
reload modes, the master's start time and its tally.
The listeners travel the systemd way (LISTEN_FDS/LISTEN_PID = our own PID).
Only fds named here lose FD_CLOEXEC; everything else closes at execve.

The record is plain data (`Handover.to_json`/`from_json` round-trip it); the
master builds it and names the sockets, the control server and the signals to
block in an `ExecPlan`. This module knows neither the master nor its loop.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sockactd.app import started_environ
from sockactd.log import get_logger
from sockactd.modes import ReloadMode
from sockactd.pool import Worker, WorkerState
from sockactd.systemd.activation import HANDOVER_ENV, prepare_exec_fds
from sockactd.worker.board import Board

if TYPE_CHECKING:
    from sockactd.control.server import ControlHandover
    from sockactd.osapi import Kernel

__all__ = ["ExecPlan", "Handover", "WorkerRecord", "exec_in_place", "take_handover"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """One worker as the next image adopts it (fds are numbers valid across execve)."""

    pid: int
    generation: int
    state: WorkerState
    status_fd: int
    board_fd: int
    started: float  # monotonic clocks survive execve (same boot), so ages stay right
    accepting: bool = False  # no D frame read yet: a reload waits for it (reloads.py, Rule 3)
    kill_deadline: float | None = None  # a retired worker's mercy runs on in the new image

    @classmethod
    def of(cls, worker: Worker) -> WorkerRecord:
        return cls(worker.pid, worker.generation, worker.state, worker.status_fd,
                   worker.board.fd, worker.started, worker.accepting,
                   worker.kill_deadline)  # fmt: skip

    def to_worker(self) -> Worker:
        board = Board(self.board_fd)
        return Worker(pid=self.pid, generation=self.generation, status_fd=self.status_fd,
                      board=board, started=self.started, state=self.state,
                      accepting=self.accepting, kill_deadline=self.kill_deadline)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Handover:
    """What one image of the master tells the next."""

    generation: int
    workers: tuple[WorkerRecord, ...]
    control_fd: int | None
    waiting_fds: tuple[int, ...]
    queued: tuple[ReloadMode, ...]  # reload modes asked for and not yet run (names in JSON)
    started_wall: float
    tally: Mapping[str, Any]  # master/tally.py's counts

    def renumbered(self, moved: Mapping[int, int]) -> Handover:
        """The same record after the fds in `moved` (old -> new number) moved."""

        def fd(number: int) -> int:
            return moved.get(number, number)

        workers = tuple(
            dataclasses.replace(w, status_fd=fd(w.status_fd), board_fd=fd(w.board_fd))
            for w in self.workers
        )
        control = None if self.control_fd is None else fd(self.control_fd)
        waiting = tuple(fd(number) for number in self.waiting_fds)
        return dataclasses.replace(self, workers=workers, control_fd=control, waiting_fds=waiting)

    def fds(self) -> list[int]:
        """Every fd the next image must inherit."""
        control = [] if self.control_fd is None else [self.control_fd]
        return [*(fd for w in self.workers for fd in (w.status_fd, w.board_fd)),
                *control, *self.waiting_fds]  # fmt: skip

    def to_json(self) -> str:
        return json.dumps({
            "generation": self.generation,
            "started_wall": self.started_wall,
            "control_fd": self.control_fd,
            "waiting_fds": list(self.waiting_fds),
            "queued": [mode.value for mode in self.queued],
            "workers": [
                {"pid": w.pid, "generation": w.generation, "state": w.state.value,
                 "status_fd": w.status_fd, "board_fd": w.board_fd, "started": w.started,
                 "accepting": w.accepting, "kill_deadline": w.kill_deadline}
                for w in self.workers
            ],
            "tally": dict(self.tally),
        })  # fmt: skip

    @classmethod
    def from_json(cls, raw: str) -> Handover:
        state = json.loads(raw)
        workers = tuple(
            WorkerRecord(
                pid=record["pid"],
                generation=record["generation"],
                state=WorkerState(record["state"]),
                status_fd=record["status_fd"],
                board_fd=record["board_fd"],
                started=record["started"],
                # An image before these fields: a serving worker accepts; a draining
                # one counts as that image last counted it, without a deadline.
                accepting=record.get("accepting", record["state"] == WorkerState.SERVING.value),
                kill_deadline=record.get("kill_deadline"),
            )
            for record in state["workers"]
        )
        return cls(
            generation=state["generation"],
            workers=workers,
            control_fd=state["control_fd"],
            waiting_fds=tuple(state["waiting_fds"]),
            queued=_modes(state["queued"]),
            started_wall=float(state.get("started_wall", time.time())),
            tally=state.get("tally", {}),
        )


def _modes(names: Sequence[str]) -> tuple[ReloadMode, ...]:
    """The queued modes the previous image named; one this image does not know is dropped."""
    modes = []
    for name in names:
        try:
            modes.append(ReloadMode.parse(name))
        except ValueError as exc:  # queued by an image that knew another mode
            log.error("queued reload dropped across the standard reload: %s", exc)
    return tuple(modes)


class ExecControl(Protocol):
    """The control server's part in an execve (control/server.py's ControlServer)."""

    def prepare_exec(self) -> ControlHandover: ...
    def cancel_exec(self) -> None: ...


@dataclass(frozen=True)
class ExecPlan:
    """How to re-execute: what travels besides the record, and how to undo a failed execve."""

    sockets: Sequence[tuple[int, str]]  # listeners and monitoring sockets: (fd, LISTEN_FDNAMES)
    control: ExecControl | None
    argv: Sequence[str]  # our arguments, without the interpreter and "-m sockactd"
    start_dir: str  # the directory we started in: relative paths in argv mean it
    back_dir: str | None  # where the master works after a failed execve (chdir)
    block_signals: Callable[[], None]  # so none hits a default action during execve
    kernel: Kernel  # its execve


def exec_in_place(record: Handover, plan: ExecPlan) -> None:
    """execve ourselves with the same arguments. Returns only if execve failed.

    `record` names the workers' fds as they are now; the control socket's fds are
    filled in here, after the control server made them inheritable.
    """
    exec_fds = prepare_exec_fds(plan.sockets)
    moved = exec_fds.moved
    if plan.control is not None:
        control = plan.control.prepare_exec()
        record = dataclasses.replace(
            record, control_fd=control.listen_fd, waiting_fds=control.waiting_fds
        )
    record = record.renumbered(moved)
    keep = record.fds()
    for fd in keep:
        os.set_inheritable(fd, True)
    env = started_environ()  # the new image applies the file's `env` entries itself
    env.update(exec_fds.env)
    env[HANDOVER_ENV] = record.to_json()
    argv = [sys.executable, "-m", "sockactd", *plan.argv]
    plan.block_signals()
    try:
        os.chdir(plan.start_dir)
        plan.kernel.execve(sys.executable, argv, env)
    except OSError as exc:
        log.error("execve %s failed: %s; the old image keeps running", sys.executable, exc)
        import signal

        signal.pthread_sigmask(signal.SIG_UNBLOCK, list(signal.Signals))
        _undo_fd_moves([fd for fd, _ in plan.sockets], moved)
        if plan.control is not None:
            plan.control.cancel_exec()
        if plan.back_dir:
            os.chdir(plan.back_dir)
        for fd in keep:
            os.set_inheritable(fd, False)


def _undo_fd_moves(listener_fds: list[int], moved: dict[int, int]) -> None:
    """Put fds back where our objects expect them after a failed execve."""
    first = 3
    for target in range(first, first + len(listener_fds)):
        if target in moved:  # something of ours lived here: restore it
            os.dup2(moved.pop(target), target, inheritable=False)
        elif target not in listener_fds:  # a free slot we filled with a listener copy
            os.close(target)
        else:
            os.set_inheritable(target, False)
    for copy in moved.values():  # listeners moved high; originals stay valid
        os.close(copy)


def take_handover(environ: MutableMapping[str, str] = os.environ) -> Handover | None:
    """Read and remove HANDOVER_ENV; None on a normal start.

    The workers' fds become close-on-exec again and their status pipes non-blocking.
    """
    raw = environ.pop(HANDOVER_ENV, None)
    if raw is None:
        return None
    record = Handover.from_json(raw)
    for worker in record.workers:
        for fd in (worker.status_fd, worker.board_fd):
            os.set_inheritable(fd, False)
        os.set_blocking(worker.status_fd, False)
    return record
