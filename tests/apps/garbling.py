"""Answers with the worker's PID; asked, also writes bytes that are not a frame to its status pipe.

GET /garble answers "garbled by PID", and once that answer is written (the body's
close()) writes an HTTP request line to the worker's status pipe: the master reads
it as an unknown kind byte (b"G"). Any other path answers "PID".

The status pipe is found as the master sees it: of this process's fds, the one pipe
whose other end the master (the parent) holds. The worker's own signal pipe is made
after the fork, and it closes the master's other fds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["GARBAGE", "app", "status_pipe_fd"]

GARBAGE = b"GET / HTTP/1.1\r\n\r\n"


def _pipes(pid: int | str) -> dict[str, int]:
    """The pipes `pid` has open: "pipe:[inode]" -> one of its fd numbers."""
    found = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            continue  # closed meanwhile (listdir's own fd)
        if target.startswith("pipe:"):
            found[target] = int(name)
    return found


def status_pipe_fd() -> int:
    """This worker's end of its status pipe."""
    (fd,) = [fd for pipe, fd in _pipes("self").items() if pipe in _pipes(os.getppid())]
    return fd


class _GarbleAfter:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self.body

    def close(self) -> None:
        os.write(status_pipe_fd(), GARBAGE)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    pid = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/garble":
        return _GarbleAfter(b"garbled by " + pid)
    return [pid]
