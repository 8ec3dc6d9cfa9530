"""py-autoreload, the worker's side: report the source files of the modules it imported.

`ModuleReporter.report_new()` sends, in `M` frames on the status pipe, the files
of modules that appeared in `sys.modules` since its last call, and costs one
len() when none did. `reporting(app, reporter)` wraps the WSGI app so it is
called before each request (what the previous response's iteration imported)
and after the app returns (what this request imported). With --threads > 1 a
lock keeps reports apart, and every other frame written while serving (the drain
confirmation) goes through `send`, under the same lock: a write of more than
PIPE_BUF bytes is not atomic, and a frame is that long when one path is (CHUNK
keeps the others within it). Imported by the worker only when py-autoreload is on.
"""

from __future__ import annotations

import _thread
import os
import sys

from sockactd.worker.status import FrameKind, write_frame

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

__all__ = ["CHUNK", "ModuleReporter", "reporting"]

# Bytes of paths per frame: with its 5-byte header a frame stays within PIPE_BUF (4096),
# so one write() puts it in the pipe whole, when the master is slow to read too.
CHUNK = 4_000


class ModuleReporter:
    def __init__(self, status_fd: int) -> None:
        self._fd = status_fd
        self._count = 0
        self._sent: set[str] = set()
        self._lock = _thread.allocate_lock()

    def report_new(self) -> None:
        """Send the files of modules imported since the last call (nothing if none were)."""
        if len(sys.modules) == self._count:
            return
        with self._lock:
            self._count = len(sys.modules)
            new = []
            for module in list(sys.modules.values()):
                path = getattr(module, "__file__", None)
                if isinstance(path, str) and path not in self._sent:
                    self._sent.add(path)
                    new.append(os.path.abspath(path))
            try:
                for chunk in chunks(new):
                    write_frame(self._fd, FrameKind.MODULES, chunk)
            except OSError:
                pass  # the master is gone; serve() notices and drains

    def send(self, kind: FrameKind, text: str = "") -> None:
        """Write a frame of another kind, never inside a report's (it waits for one)."""
        with self._lock:
            write_frame(self._fd, kind, text)


def chunks(paths: list[str], limit: int = CHUNK) -> list[str]:
    """`paths` as newline-separated texts of at most about `limit` bytes each."""
    texts: list[str] = []
    current: list[str] = []
    size = 0
    for path in paths:
        length = len(path.encode("utf-8", "replace")) + 1
        if current and size + length > limit:
            texts.append("\n".join(current))
            current, size = [], 0
        current.append(path)
        size += length
    if current:
        texts.append("\n".join(current))
    return texts


def reporting(app: Callable[..., Any], reporter: ModuleReporter) -> Callable[..., Any]:
    """`app`, reporting new modules around each call."""

    def app_reporting_imports(environ: Any, start_response: Any) -> Iterable[bytes]:
        reporter.report_new()  # what the previous response's iteration imported
        try:
            result: Iterable[bytes] = app(environ, start_response)
            return result
        finally:
            reporter.report_new()

    return app_reporting_imports
