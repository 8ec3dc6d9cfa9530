"""Binding the control socket's path: before any listener or worker exists, with plain errors.

Rule 1: a path another live server answers on is never taken over; a socket
        file nobody answers on (a crashed server's) is removed and bound again;
        anything that is not a socket is left alone.
Rule 2: every failure is one sentence naming the path and the reason (never
        "...: None": some OSErrors carry no strerror), raised as ControlError.
Cheap enough for the cold-start path (`_socket`, not `socket`): master/run.py
binds here before it binds the listeners and forks the first workers, and
hands the fd to server.py, which serves it.
"""

from __future__ import annotations

import _socket
import os
import stat

from sockactd.control.paths import ensure_private_parent
from sockactd.errors import ControlError
from sockactd.log import get_logger

__all__ = ["MAX_PATH", "bind_control_socket"]

log = get_logger(__name__)

MAX_PATH = 107  # bytes: sockaddr_un.sun_path holds 108 with the terminating NUL


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _clear_stale(path: str) -> None:
    """Unlink a socket file nobody answers on; refuse anything else (Rule 1)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlError(f"{path} exists and is not a socket; not replacing it")
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except ConnectionRefusedError:
        log.info("control: removing stale socket %s (nothing answers on it)", path)
        os.unlink(path)
        return
    except OSError as exc:  # EAGAIN (full backlog), timeout, EACCES: someone is there
        raise ControlError(f"cannot take over control socket {path}: {_reason(exc)}") from None
    finally:
        probe.close()
    raise ControlError(f"another server is already answering on control socket {path}")


def bind_control_socket(path: str) -> int:
    """Bind and listen on `path` (mode 0600); return the socket's fd (close-on-exec)."""
    if len(os.fsencode(path)) > MAX_PATH:
        raise ControlError(
            f"control socket path {path} is {len(os.fsencode(path))} bytes long; "
            f"a UNIX socket path holds at most {MAX_PATH}"
        )
    ensure_private_parent(path)
    _clear_stale(path)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # no window where the socket is 0666; start-up is single-threaded
    try:
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(16)
    except OSError as exc:
        sock.close()
        raise ControlError(f"cannot bind control socket {path}: {_reason(exc)}") from None
    finally:
        os.umask(old_umask)
    return int(sock.detach())
