"""Standard reload: re-execute the master in place and let the new image take over.

Same PID (systemd's MainPID never changes), so the old workers stay our
children and the listening sockets stay open. The old image writes what the
new one needs into SOCKACTD_HANDOVER (JSON): the serving generation, each
worker's pid, generation, status-pipe fd and board fd, the control socket and
the connections waiting for this reload's outcome, and queued reload modes.
The listeners travel the systemd way (LISTEN_FDS/LISTEN_PID = our own PID).
Only fds named here lose FD_CLOEXEC; everything else closes at execve.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sockactd.app import started_environ
from sockactd.log import get_logger
from sockactd.master.pool import Worker, WorkerState
from sockactd.master.run import HANDOVER_ENV
from sockactd.systemd.activation import prepare_exec_fds
from sockactd.worker.board import Board

if TYPE_CHECKING:
    from sockactd.master.master import Master

__all__ = ["Handover", "exec_in_place", "take_handover"]

log = get_logger(__name__)


@dataclass(frozen=True)
class Handover:
    generation: int
    workers: list[Worker]
    control_fd: int | None
    waiting_fds: list[int]
    queued: list[str]
    started_wall: float
    tally: dict[str, Any]  # master/tally.py's counts, kept across the execve


def exec_in_place(master: Master, queued: Sequence[str]) -> None:
    """execve ourselves with the same arguments. Returns only if execve failed."""
    listeners = [(lst.sock.fileno(), lst.protocol) for lst in master.listeners]
    listeners += [(m.endpoint.fileno(), m.endpoint.name) for m in master.monitors]
    exec_fds = prepare_exec_fds(listeners)
    moved = exec_fds.moved
    control = master.control.prepare_exec() if master.control is not None else None
    control_fds = [control.listen_fd, *control.waiting_fds] if control is not None else []
    workers = [w for w in master.pool if w.state is not WorkerState.GONE]
    keep = [moved.get(fd, fd) for w in workers for fd in (w.status_fd, w.board.fd)]
    keep += [moved.get(fd, fd) for fd in control_fds]
    for fd in keep:
        os.set_inheritable(fd, True)
    state = {
        "generation": master.pool.generation,
        "started_wall": master.started_wall,
        "control_fd": moved.get(control_fds[0], control_fds[0]) if control_fds else None,
        "waiting_fds": [moved.get(fd, fd) for fd in control_fds[1:]],
        "queued": list(queued),
        "workers": [_worker_record(w, moved) for w in workers],
        "tally": master.tally.to_json(),
    }
    env = started_environ()  # the new image applies the file's `env` entries itself
    env.update(exec_fds.env)
    import json

    env[HANDOVER_ENV] = json.dumps(state)
    argv = [sys.executable, "-m", "sockactd", *master.argv]
    master.inbox.block_for_exec()
    try:
        os.chdir(master.start_dir)
        master.kernel.execve(sys.executable, argv, env)
    except OSError as exc:
        log.error("execve %s failed: %s; the old image keeps running", sys.executable, exc)
        import signal

        signal.pthread_sigmask(signal.SIG_UNBLOCK, list(signal.Signals))
        _undo_fd_moves([fd for fd, _ in listeners], moved)
        if master.control is not None:
            master.control.cancel_exec()
        if master.config.chdir:
            os.chdir(master.config.chdir)
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


def _worker_record(worker: Worker, moved: dict[int, int]) -> dict[str, object]:
    return {
        "pid": worker.pid,
        "generation": worker.generation,
        "state": worker.state.value,
        "status_fd": moved.get(worker.status_fd, worker.status_fd),
        "board_fd": moved.get(worker.board.fd, worker.board.fd),
        # monotonic clocks survive execve (same boot), so ages stay right
        "started": worker.started,
    }


def take_handover(environ: MutableMapping[str, str] = os.environ) -> Handover | None:
    """Read and remove SOCKACTD_HANDOVER; None on a normal start."""
    raw = environ.pop(HANDOVER_ENV, None)
    if raw is None:
        return None
    import json

    state = json.loads(raw)
    workers = []
    for record in state["workers"]:
        for key in ("status_fd", "board_fd"):
            os.set_inheritable(record[key], False)
        os.set_blocking(record["status_fd"], False)
        workers.append(
            Worker(
                pid=record["pid"],
                generation=record["generation"],
                status_fd=record["status_fd"],
                board=Board(record["board_fd"]),
                started=record["started"],
                state=WorkerState(record["state"]),
            )
        )
    return Handover(
        generation=state["generation"],
        workers=workers,
        control_fd=state["control_fd"],
        waiting_fds=list(state["waiting_fds"]),
        queued=list(state["queued"]),
        started_wall=float(state.get("started_wall", time.time())),
        tally=state.get("tally", {}),
    )
