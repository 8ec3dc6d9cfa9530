"""File descriptors handed over by systemd (see sd_listen_fds(3)), and back out for a re-exec.

Rule 1: "is this for us?" -- LISTEN_FDS counts only when LISTEN_PID is our pid.
Rule 2: the LISTEN_* variables are removed from the environment every time they
        are read, for us or not, so workers and the application never see them.
Rule 3: for a standard reload (execve in place, same pid) `prepare_exec_fds` puts
        the listening sockets at 3..3+n-1 without clobbering any other open fd,
        and returns the LISTEN_* values the new image will read. Beside them travels
        the master's own record (master/handover.py), in HANDOVER_ENV; a worker
        never sees it (worker/entry.py removes it).

This module only moves and flags file descriptors. It never binds, listens or
changes socket options: sockets.py wraps and verifies the sockets.
"""

from __future__ import annotations

import errno
import fcntl
import os

from sockactd.errors import ActivationError

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import MutableMapping, Sequence

__all__ = [
    "HANDOVER_ENV",
    "LISTEN_FDS_START",
    "ExecFds",
    "InheritedFd",
    "prepare_exec_fds",
    "take_inherited_fds",
]

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START
HANDOVER_ENV = "SOCKACTD_HANDOVER"  # set by a standard reload's execve, for the new image
LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
UNKNOWN_NAME = "unknown"  # what sd_listen_fds_with_names() reports for an unnamed fd
# Fds moved out of the way for a re-exec go at or above this number, far from 3..3+n-1.
HIGH_FD = 100
MAX_FDS = 65_536  # sanity bound on LISTEN_FDS; each fd is still checked to be open


class InheritedFd:
    __slots__ = ("fd", "name")

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name  # FileDescriptorName= of the socket unit, "unknown" when unnamed

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InheritedFd) and (self.fd, self.name) == (other.fd, other.name)

    def __hash__(self) -> int:
        return hash((self.fd, self.name))

    def __repr__(self) -> str:
        return f"InheritedFd({self.fd}, {self.name!r})"


class ExecFds:
    """What `prepare_exec_fds` did, for the caller about to execve.

    env: LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES to add to the new image's environment.
    moved: old fd number -> new fd number for every fd that had to leave 3..3+n-1
        (listeners in the wrong slot included). Objects wrapping an old number
        (sockets, pipes, selectors) must be re-pointed before they are used again.
    """

    __slots__ = ("env", "moved")

    def __init__(self, env: dict[str, str], moved: dict[int, int] | None = None) -> None:
        self.env = env
        self.moved = {} if moved is None else moved


def take_inherited_fds(
    environ: MutableMapping[str, str] = os.environ, pid: int | None = None
) -> list[InheritedFd]:
    """Return the fds systemd passed to this process, FD_CLOEXEC set, and clear LISTEN_*.

    `pid` defaults to os.getpid(). Raises ActivationError when the variables are
    for us but malformed, or name an fd that is not open.
    """
    listen_pid, listen_fds, listen_names = (environ.pop(name, None) for name in LISTEN_VARS)
    if listen_pid is None or listen_fds is None:
        return []
    if _parse_count("LISTEN_PID", listen_pid, 2**31) != (os.getpid() if pid is None else pid):
        return []  # meant for a parent that exec'd us without clearing them
    count = _parse_count("LISTEN_FDS", listen_fds, MAX_FDS)
    names = _parse_names(listen_names, count)
    taken = []
    for offset, name in enumerate(names):
        fd = LISTEN_FDS_START + offset
        _set_cloexec(fd, name)
        taken.append(InheritedFd(fd, name))
    return taken


def _parse_count(variable: str, value: str, limit: int) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) > limit:
        raise ActivationError(f"{variable}={value!r} is not a valid number", errno.EINVAL)
    return int(value)


def _parse_names(raw: str | None, count: int) -> list[str]:
    names = raw.split(":") if raw else []
    if len(names) > count:
        raise ActivationError(
            f"LISTEN_FDNAMES has {len(names)} names for LISTEN_FDS={count}", errno.EINVAL
        )
    names += [UNKNOWN_NAME] * (count - len(names))
    return [name or UNKNOWN_NAME for name in names]


def _set_cloexec(fd: int, name: str) -> None:
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
    except OSError as exc:
        raise ActivationError(
            f"systemd passed fd {fd} ({name}) but it is not open: {exc.strerror}",
            exc.errno or errno.EBADF,
        ) from None


def prepare_exec_fds(listeners: Sequence[tuple[int, str]]) -> ExecFds:
    """Place `listeners` (fd, name) at 3..3+n-1 for an execve in place and clear FD_CLOEXEC there.

    Any other open fd found in 3..3+n-1 is moved to a free number >= 100 (keeping its
    own FD_CLOEXEC flag) and reported in ExecFds.moved; no fd outside that range is
    closed or replaced. The original listener fds stay open with FD_CLOEXEC, so they
    vanish at execve, and stay valid if the execve fails.
    Raises ValueError for a duplicate fd, a fd that is not open, or a name that
    LISTEN_FDNAMES cannot carry.
    """
    fds = [fd for fd, _ in listeners]
    names = [name for _, name in listeners]
    _check_exec_request(fds, names)
    targets = range(LISTEN_FDS_START, LISTEN_FDS_START + len(fds))
    moved: dict[int, int] = {}
    for target, fd in zip(targets, fds, strict=True):
        if target != fd and _is_open(target):
            moved[target] = _move_high(target)
    for target, fd in zip(targets, fds, strict=True):
        source = moved.get(fd, fd)
        if source != target:
            os.dup2(source, target, inheritable=True)
        else:
            os.set_inheritable(target, True)
    env = {
        "LISTEN_PID": str(os.getpid()),
        "LISTEN_FDS": str(len(fds)),
        "LISTEN_FDNAMES": ":".join(names),
    }
    return ExecFds(env=env, moved=moved)


def _check_exec_request(fds: list[int], names: list[str]) -> None:
    if len(set(fds)) != len(fds):
        raise ValueError(f"duplicate listener fds: {fds}")
    for fd in fds:
        if not _is_open(fd):
            raise ValueError(f"listener fd {fd} is not open")
    for name in names:
        if not name or ":" in name or not name.isascii() or not name.isprintable():
            raise ValueError(f"fd name {name!r} cannot go into LISTEN_FDNAMES")


def _is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


def _move_high(fd: int) -> int:
    # Duplicate with the same close-on-exec flag so an fd meant to survive the
    # execve (an old worker's status pipe) still does, then free the slot.
    cloexec = fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    command = fcntl.F_DUPFD_CLOEXEC if cloexec else fcntl.F_DUPFD
    new_fd = fcntl.fcntl(fd, command, HIGH_FD)
    os.close(fd)
    return new_fd
