"""Blocking control-socket client for sockactctl and tests: one request, one answer.

Errors are ControlError subclasses whose `exit_code` is what sockactctl exits with:
ControlUnreachable (6) when nothing answers on the path, ControlNoAnswer (1) when
the server accepted the request but no answer came (timeout, or the connection
closed: the outcome is unknown). A server that answers ``ok: false`` is not an
error here; the caller reads `Response.ok`.
"""

from __future__ import annotations

import errno
import socket
import time

from sockactd.control.protocol import (
    MAX_LINE,
    ControlRequest,
    LineReader,
    Response,
    decode_response,
    encode_request,
    predates_versions,
)
from sockactd.errors import ControlError, ExitCode

__all__ = ["ControlNoAnswer", "ControlUnreachable", "request"]


class ControlUnreachable(ControlError):
    """No sockactd answers on the control socket."""

    exit_code = ExitCode.CONTROL_UNREACHABLE


class ControlNoAnswer(ControlError):
    """The request was sent but no answer arrived; its outcome is unknown."""

    exit_code = ExitCode.FAILURE


_HINTS = {
    errno.ENOENT: "no such file: is sockactd running, with this --control-socket?",
    errno.ECONNREFUSED: "connection refused: nothing listens there (stale socket file?)",
    errno.EACCES: "permission denied: run as root or as the server's user",
    errno.ENOTSOCK: "not a socket",
}


def _connect(path: str, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        hint = _HINTS.get(exc.errno or 0, exc.strerror or str(exc))
        raise ControlUnreachable(
            f"cannot reach sockactd on control socket {path}: {hint}"
        ) from None
    return sock


def _read_answer(sock: socket.socket, path: str, timeout: float | None) -> bytes:
    deadline = None if timeout is None else time.monotonic() + timeout
    reader = LineReader(MAX_LINE)
    while True:
        if deadline is not None:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            raise ControlNoAnswer(f"no answer from {path} within {timeout:g}s") from None
        except ConnectionResetError:
            data = b""
        if not data:
            raise ControlNoAnswer(f"sockactd on {path} closed the connection without answering")
        line = reader.feed(data)
        if line is not None:
            return line


def request(path: str, req: ControlRequest, timeout: float | None = 10.0) -> Response:
    """Send `req` to the server on `path`; wait at most `timeout` seconds (None: forever).

    A server older than control protocol versions refuses the version fields; the
    request, which it therefore did not carry out, goes again in its format.
    """
    response = _exchange(path, encode_request(req), timeout)
    if predates_versions(response):
        response = _exchange(path, encode_request(req, versioned=False), timeout)
    return response


def _exchange(path: str, line: bytes, timeout: float | None) -> Response:
    with _connect(path, timeout) as sock:
        try:
            sock.sendall(line)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading (a refusal): read its answer
        return decode_response(_read_answer(sock, path, timeout))
