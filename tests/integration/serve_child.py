"""Run worker/serve.py:serve() in forked children on a real listening socket, without a master.

The child does what worker/entry.py does for serve(): a SIGTERM handler plus
`signal.set_wakeup_fd` on a pipe whose read end is `stop_fd`. Used by the
integration tests and by bench/serve_only.py. Children are stopped by PID.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sockactd.config.model import Config
from sockactd.sockets import Listener
from sockactd.worker.board import Board
from sockactd.worker.lobby import Lobby

__all__ = ["Served", "listening_socket", "serving"]

App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def listening_socket(host: str = "127.0.0.1", family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


@dataclass
class Served:
    port: int
    pids: list[int]
    boards: list[Board] = field(default_factory=list)
    address: Any = None

    def stop(self, timeout: float = 10.0) -> list[int]:
        """SIGTERM every child, wait for it; return the exit statuses."""
        statuses = []
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in self.pids:
            statuses.append(_wait(pid, timeout))
        self.pids = []
        return statuses

    def kill(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pids = []


def _wait(pid: int, timeout: float) -> int:
    # a pidfd becomes readable when the child exits: wait on that, not on a timer
    pidfd = os.pidfd_open(pid)
    try:
        exited, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if exited:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"serve() in child {pid} did not return within {timeout:g}s")


def _child(
    listeners: list[Listener],
    app: App,
    config: Config,
    board: Board,
    quiet: bool,
    lobby: Lobby | None,
) -> None:
    from sockactd.worker.serve import Links, serve

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(process)d %(name)s %(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.DEBUG)
    read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    profile_to = os.environ.get("SOCKACTD_PROFILE_DIR")
    if not profile_to:
        serve(listeners, app, config, board, Links(read_fd, lobby=lobby))
        return
    import cProfile

    cProfile.runctx(
        "serve(listeners, app, config, board, Links(read_fd, lobby=lobby))",
        globals(),
        {**locals(), "serve": serve},
        filename=os.path.join(profile_to, f"serve-{os.getpid()}.prof"),
    )


@contextlib.contextmanager
def serving(
    app: App,
    config: Config | None = None,
    workers: int = 1,
    quiet: bool = False,
    sock: socket.socket | None = None,
    protocol: str = "http",
    lobby: bool = True,
    **settings: Any,
) -> Iterator[Served]:
    """Fork `workers` children serving `app` on one shared socket; kill them on exit.

    With more than one worker they share a lobby (worker/lobby.py), as a generation
    forked by the master does, unless `lobby` is False.
    """
    config = (config or Config()).replace(**settings)
    own = sock is None
    sock = sock or listening_socket()
    address = sock.getsockname()
    listeners = [Listener(sock, protocol, str(address), inherited=False)]
    served = Served(port=address[1] if isinstance(address, tuple) else 0, pids=[], address=address)
    shared = Lobby.create() if lobby and workers > 1 else None
    try:
        for _ in range(workers):
            board = Board.create()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                code = 0
                try:
                    _child(listeners, app, config, board, quiet, shared)
                except BaseException:
                    logging.getLogger(__name__).exception("serve() raised")
                    code = 70
                finally:
                    os._exit(code)
            served.pids.append(pid)
            served.boards.append(board)
        yield served
    finally:
        served.kill()
        for board in served.boards:
            board.close()
        if shared is not None:
            shared.close()
        if own:
            sock.close()
