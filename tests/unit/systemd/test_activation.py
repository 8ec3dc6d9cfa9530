"""systemd/activation.py: LISTEN_* in (take_inherited_fds) and back out for a re-exec.

Fd numbers are process-global, so everything that touches fds 3.. runs in a forked
child (`in_child`) that reports back through a pipe kept at a high fd number.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import socket
import subprocess
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import pytest

from sockactd.errors import ActivationError
from sockactd.systemd.activation import (
    ExecFds,
    InheritedFd,
    prepare_exec_fds,
    take_inherited_fds,
)

REPORT_FD = 250  # where the child keeps its end of the report pipe, far from 3..n


def in_child(body: Callable[[], Any]) -> Any:
    """Run `body` in a forked child; return its result or raise AssertionError with its error."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.dup2(write_fd, REPORT_FD)
            os.close(write_fd)
            os.close(read_fd)
            try:
                outcome: tuple[str, Any] = ("ok", body())
            except BaseException as exc:
                outcome = ("error", f"{type(exc).__name__}: {exc}")
            os.write(REPORT_FD, pickle.dumps(outcome))
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        raise AssertionError(f"in child: {value}")
    return value


def identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def cloexec(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)


def place(fd: int, target: int, inheritable: bool = True) -> None:
    """Put a copy of `fd` at `target` (child only)."""
    os.dup2(fd, target, inheritable=inheritable)


# --- take_inherited_fds: environments that are not for us, or are malformed ----------------

ME = os.getpid()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, [], id="nothing"),
        pytest.param({"LISTEN_PID": str(ME + 1), "LISTEN_FDS": "2"}, [], id="other-pid"),
        pytest.param({"LISTEN_PID": str(ME)}, [], id="pid-without-fds"),
        pytest.param({"LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"}, [], id="fds-without-pid"),
        pytest.param({"LISTEN_PID": str(ME), "LISTEN_FDS": "0"}, [], id="zero-fds"),
    ],
)
def test_not_for_us_returns_nothing_and_clears(
    environ: dict[str, str], expected: list[InheritedFd]
) -> None:
    environ = {**environ, "PATH": "/bin"}
    assert take_inherited_fds(environ, pid=ME) == expected
    assert environ == {"PATH": "/bin"}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param({"LISTEN_PID": "abc", "LISTEN_FDS": "1"}, "LISTEN_PID", id="pid-text"),
        pytest.param({"LISTEN_PID": str(ME), "LISTEN_FDS": "-1"}, "LISTEN_FDS", id="fds-neg"),
        pytest.param({"LISTEN_PID": str(ME), "LISTEN_FDS": "two"}, "LISTEN_FDS", id="fds-text"),
        pytest.param(
            {"LISTEN_PID": str(ME), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"},
            "2 names for LISTEN_FDS=1",
            id="too-many-names",
        ),
    ],
)
def test_malformed_raises_and_still_clears(environ: dict[str, str], message: str) -> None:
    environ = dict(environ)
    with pytest.raises(ActivationError, match=message):
        take_inherited_fds(environ, pid=ME)
    assert environ == {}


# --- take_inherited_fds: real fds, in a child ---------------------------------------------


def test_takes_fds_with_names_sets_cloexec_and_clears_environment() -> None:
    def body() -> Any:
        a, b = socket.socketpair()
        place(a.fileno(), 3)
        place(b.fileno(), 4)
        os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="2", LISTEN_FDNAMES="uwsgi")
        taken = take_inherited_fds()
        seen_by_child = subprocess.run(
            ["env"], capture_output=True, text=True, check=True, close_fds=True
        ).stdout
        return (
            taken,
            [cloexec(3), cloexec(4)],
            [k for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES") if k in os.environ],
            "LISTEN_" in seen_by_child,
        )

    taken, flags, left, leaked = in_child(body)
    assert taken == [InheritedFd(3, "uwsgi"), InheritedFd(4, "unknown")]
    assert flags == [True, True]
    assert left == []
    assert leaked is False


def test_fd_that_is_not_open_is_an_error() -> None:
    def body() -> Any:
        os.closerange(3, 20)
        environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1"}
        try:
            take_inherited_fds(environ)
        except ActivationError as exc:
            return str(exc), exc.errno, environ
        return None

    message, errno_, environ = in_child(body)
    assert "fd 3" in message and "not open" in message
    assert errno_ == 9  # EBADF
    assert environ == {}


# --- prepare_exec_fds ------------------------------------------------------------------------


def test_moves_listeners_into_place_and_squatters_out_of_the_way() -> None:
    def body() -> Any:
        listeners = [socket.socket() for _ in range(2)]
        squat_keep, squat_drop = os.pipe()  # squatters on fds 3 and 4
        bystander_r, _ = os.pipe()
        place(listeners[0].fileno(), 50, inheritable=False)
        place(listeners[1].fileno(), 51, inheritable=False)
        place(squat_keep, 3, inheritable=True)  # must survive exec: CLOEXEC stays clear
        place(squat_drop, 4, inheritable=False)
        place(bystander_r, 5, inheritable=True)
        before = {fd: identity(fd) for fd in (3, 4, 5, 50, 51)}
        result = prepare_exec_fds([(50, "http"), (51, "uwsgi")])
        return (
            before,
            result,
            {
                "ids": {fd: identity(fd) for fd in (3, 4, 5, *result.moved.values())},
                "cloexec": {fd: cloexec(fd) for fd in (3, 4, 5, 50, 51, *result.moved.values())},
                "pid": os.getpid(),
            },
        )

    before, result, after = in_child(body)
    assert isinstance(result, ExecFds)
    assert result.env == {"LISTEN_PID": str(after["pid"]), "LISTEN_FDS": "2",
                          "LISTEN_FDNAMES": "http:uwsgi"}  # fmt: skip
    assert sorted(result.moved) == [3, 4]
    assert all(new >= 100 for new in result.moved.values())
    # listeners now at 3 and 4, inheritable
    assert after["ids"][3] == before[50] and after["ids"][4] == before[51]
    assert after["cloexec"][3] is False and after["cloexec"][4] is False
    # squatters moved with their own close-on-exec flag; bystander untouched
    assert after["ids"][result.moved[3]] == before[3]
    assert after["ids"][result.moved[4]] == before[4]
    assert after["cloexec"][result.moved[3]] is False
    assert after["cloexec"][result.moved[4]] is True
    assert after["ids"][5] == before[5] and after["cloexec"][5] is False
    # originals stay open (valid if execve fails) and vanish at execve
    assert after["cloexec"][50] is True and after["cloexec"][51] is True


def test_swapped_listeners_are_reordered_without_loss() -> None:
    def body() -> Any:
        a, b = socket.socket(), socket.socket()
        place(a.fileno(), 3, inheritable=False)
        place(b.fileno(), 4, inheritable=False)
        before = {3: identity(3), 4: identity(4)}
        result = prepare_exec_fds([(4, "b"), (3, "a")])
        return (
            before,
            result,
            {3: identity(3), 4: identity(4)},
            [cloexec(3), cloexec(4)],
            {old: identity(new) for old, new in result.moved.items()},
        )

    before, result, after, flags, moved_ids = in_child(body)
    assert after == {3: before[4], 4: before[3]}
    assert flags == [False, False]
    assert result.env["LISTEN_FDNAMES"] == "b:a"
    assert moved_ids == {3: before[3], 4: before[4]}  # the caller can re-point its objects


def test_listener_already_in_place_is_only_made_inheritable() -> None:
    def body() -> Any:
        sock = socket.socket()
        place(sock.fileno(), 3, inheritable=False)
        ident = identity(3)
        result = prepare_exec_fds([(3, "http")])
        return result.moved, identity(3) == ident, cloexec(3)

    assert in_child(body) == ({}, True, False)


def closed_fd() -> int:
    """A descriptor number nothing has open (a fixed one may be open in a long test run)."""
    return max(int(name) for name in os.listdir("/proc/self/fd")) + 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda fd: [(fd, "http"), (fd, "uwsgi")], "duplicate", id="duplicate"),
        pytest.param(lambda fd: [(fd, "a:b")], "LISTEN_FDNAMES", id="colon-in-name"),
        pytest.param(lambda fd: [(fd, "")], "LISTEN_FDNAMES", id="empty-name"),
        pytest.param(lambda fd: [(closed_fd(), "http")], "not open", id="closed-fd"),
    ],
)
def test_bad_requests_change_nothing(
    make: Callable[[int], list[tuple[int, str]]], message: str
) -> None:
    def body() -> Any:
        sock = socket.socket()
        squatter, _ = os.pipe()
        place(squatter, 3)
        ident = identity(3)
        try:
            prepare_exec_fds(make(sock.fileno()))
        except ValueError as exc:
            return str(exc), identity(3) == ident
        return None

    text, untouched = in_child(body)
    assert message in text
    assert untouched


EXEC_PROBE = """
import os, pickle, socket
from sockactd.systemd.activation import take_inherited_fds
fds = take_inherited_fds()
report = int(os.environ["REPORT"])
kinds = [socket.socket(fileno=os.dup(f.fd)).getsockname() for f in fds]
os.write(report, pickle.dumps(("ok", (os.getpid(), fds, kinds, "LISTEN_PID" in os.environ))))
"""


def test_round_trip_through_execve_keeps_pid_and_sockets() -> None:
    """prepare_exec_fds + execve in place: the new image takes the same sockets as its own."""

    def body() -> Any:
        http = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        http.bind(("127.0.0.1", 0))
        http.listen()
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind("\0sockactd-test-activation-" + str(os.getpid()))
        unix.listen()
        squatter, _ = os.pipe()
        place(squatter, 3, inheritable=False)
        result = prepare_exec_fds([(http.fileno(), "http"), (unix.fileno(), "uwsgi")])
        os.set_inheritable(REPORT_FD, True)
        env: MutableMapping[str, str] = {**os.environ, **result.env, "REPORT": str(REPORT_FD)}
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        os.execve(sys.executable, [sys.executable, "-c", EXEC_PROBE], env)

    pid, fds, names, leaked = in_child(body)
    assert fds == [InheritedFd(3, "http"), InheritedFd(4, "uwsgi")]
    assert names[0][0] == "127.0.0.1"
    assert names[1].startswith(b"\0sockactd-test-activation-")
    assert names[1].endswith(str(pid).encode())  # same pid before and after execve
    assert leaked is False
