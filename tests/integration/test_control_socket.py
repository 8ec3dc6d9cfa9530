"""The control socket end to end: a real UNIX socket, a selector loop, sockactctl as a process.

`Loop` runs ControlServer in a thread exactly as the master drives it (attach to
the master's loop.Loop, next_deadline/expire), and `FakeMaster` plays the master's
on_request: status answers at once, reload without --wait answers "reload queued",
reload --wait keeps the Replier until the test decides the outcome.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sockactd.control.client import ControlUnreachable, request
from sockactd.control.protocol import (
    Command,
    ControlRequest,
    Response,
    StatusData,
    decode_response,
)
from sockactd.control.server import ControlServer, Replier
from sockactd.errors import ControlError, ExitCode
from sockactd.master.loop import Loop as MasterLoop
from sockactd.modes import ReloadMode
from tests.support import child_environ, require, wait_until

T = TypeVar("T")
NOBODY = 65534

STATUS: StatusData = {
    "phase": "serving", "generation": 3, "uptime": 12.5, "pid": os.getpid(),
    "reload": None,
    "last_reload": {"ok": True, "message": "chain reload done", "generation": 3},
    "workers": [{"pid": 4242, "generation": 3, "state": "serving", "requests": 17,
                 "rss_bytes": 31457280, "uptime": 10.0}],
}  # fmt: skip


class FakeMaster:
    def __init__(self) -> None:
        self.requests: list[ControlRequest] = []
        self.waiting: list[Replier] = []
        self.status: dict[str, Any] = dict(STATUS)
        self.sent: list[bool] = []

    def on_request(self, req: ControlRequest, reply: Replier) -> None:
        self.requests.append(req)
        if req.mode is ReloadMode.STANDARD and req.command is Command.RELOAD and not req.wait:
            raise RuntimeError("simulated master bug")
        if req.command is Command.STATUS:
            reply.send(Response(True, "", self.status))
        elif req.wait:
            self.waiting.append(reply)
        else:
            reply.send(Response(True, f"reload queued ({req.mode or 'chain'})"))

    def finish(self, ok: bool, message: str) -> None:
        self.sent += [r.send(Response(ok, message)) for r in self.waiting]
        self.waiting.clear()


class Loop:
    """The master's selector loop in miniature, in a thread; `call` runs code inside it."""

    def __init__(self, server: ControlServer) -> None:
        self.server = server
        self.loop = MasterLoop()
        self._wake_r, self._wake_w = socket.socketpair()
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._running = True
        server.attach(self.loop)
        self.loop.watch(self._wake_r, self._on_wake)
        self._thread = threading.Thread(target=self._run, name="control-loop")
        self._thread.start()

    def _run(self) -> None:
        while self._running:
            deadline = self.server.next_deadline()
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            self.loop.run_once(timeout)
            self.server.expire()

    def _on_wake(self, events: int) -> None:
        self._wake_r.recv(64)
        while not self._calls.empty():
            self._calls.get()()

    def call(self, fn: Callable[[], T]) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._calls.put(lambda: future.set_result(fn()))
        self._wake_w.send(b"x")
        return future.result(timeout=10)

    def halt(self) -> None:
        """End the loop thread; the server stays open (as at an execve)."""

        def leave() -> None:
            self._running = False

        self.call(leave)
        self._thread.join(timeout=10)
        self.server.detach()
        self.loop.close()
        self._wake_r.close()
        self._wake_w.close()

    def stop(self) -> None:
        self.halt()
        self.server.close()


@pytest.fixture
def sock_path(tmp_path: Path) -> str:
    return str(tmp_path / "run" / "control.sock")


@pytest.fixture
def master() -> FakeMaster:
    return FakeMaster()


@pytest.fixture
def loop(sock_path: str, master: FakeMaster) -> Iterator[Loop]:
    server = ControlServer(sock_path, master.on_request, read_timeout=0.5, write_timeout=0.5)
    running = Loop(server)
    yield running
    running.stop()


def ctl(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sockactd.control.ctl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environ(env),
    )


def finished(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out, err


def raw_exchange(path: str, payload: bytes) -> Response:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return decode_response(data)


# --- the socket file ---------------------------------------------------------------


def test_socket_is_private_and_removed_at_close(sock_path: str, master: FakeMaster) -> None:
    server = ControlServer(sock_path, master.on_request)
    assert os.stat(sock_path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(sock_path)).st_mode & 0o777 == 0o700
    server.close()
    assert not os.path.exists(sock_path)


def test_close_leaves_a_socket_file_that_is_not_ours(sock_path: str, master: FakeMaster) -> None:
    server = ControlServer(sock_path, master.on_request)
    os.unlink(sock_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(sock_path)  # a successor took the path
        server.close()
        assert os.path.exists(sock_path)


def test_stale_socket_file_is_replaced(sock_path: str, master: FakeMaster) -> None:
    os.makedirs(os.path.dirname(sock_path), mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(sock_path)  # bound, never listening, closed: what a crash leaves behind
    running = Loop(ControlServer(sock_path, master.on_request))
    try:
        assert request(sock_path, ControlRequest(Command.STATUS)).data == STATUS
    finally:
        running.stop()


def test_live_socket_is_not_taken_over(loop: Loop, sock_path: str, master: FakeMaster) -> None:
    with pytest.raises(ControlError, match="another server is already answering"):
        ControlServer(sock_path, master.on_request)
    assert request(sock_path, ControlRequest(Command.STATUS)).ok  # the first one still serves


def test_other_file_at_the_path_is_refused(sock_path: str, master: FakeMaster) -> None:
    os.makedirs(os.path.dirname(sock_path), mode=0o700)
    Path(sock_path).write_text("precious")
    with pytest.raises(ControlError, match="exists and is not a socket"):
        ControlServer(sock_path, master.on_request)
    assert Path(sock_path).read_text() == "precious"


# --- sockactctl as a real process ---------------------------------------------------


def test_reload_without_wait_is_queued(loop: Loop, sock_path: str, master: FakeMaster) -> None:
    code, out, err = finished(ctl("--control-socket", sock_path, "reload", "--mode", "workers"))
    assert (code, out.strip(), err) == (0, "reload queued (workers)", "")
    [req] = master.requests
    assert (req.command, req.mode, req.wait) == (Command.RELOAD, ReloadMode.WORKERS, False)
    assert req.peer is not None and req.peer.uid == os.geteuid()


@pytest.mark.parametrize(
    ("ok", "message", "exit_code", "stream"),
    [
        (True, "chain reload done: generation 4 serves everything", 0, "out"),
        (False, "reload aborted: worker 77 exited during import (status 70)", 65, "err"),
    ],
)
def test_reload_wait_reports_the_outcome(
    loop: Loop, sock_path: str, master: FakeMaster, ok: bool, message: str, exit_code: int,
    stream: str,
) -> None:  # fmt: skip
    proc = ctl("--control-socket", sock_path, "reload", "--wait", "--timeout", "30")
    wait_until(lambda: master.waiting, 10, "the reload --wait request to reach the master")
    assert proc.poll() is None  # still waiting for the outcome
    loop.call(lambda: master.finish(ok, message))
    code, out, err = finished(proc)
    assert code == exit_code
    assert message in (out if stream == "out" else err)
    assert master.requests[0].timeout == 30.0


def test_reload_wait_times_out_and_late_answer_is_harmless(
    loop: Loop, sock_path: str, master: FakeMaster
) -> None:
    code, _, err = finished(
        ctl("--control-socket", sock_path, "reload", "--wait", "--timeout", "0.3")
    )
    assert code == ExitCode.FAILURE
    assert "no answer" in err and sock_path in err
    loop.call(lambda: master.finish(True, "done, but nobody listens"))
    wait_until(lambda: loop.call(loop.server.fds) == [loop.server.fileno()], 5, "cleanup")


def test_status_json(loop: Loop, sock_path: str) -> None:
    code, out, err = finished(ctl("--control-socket", sock_path, "status", "--json"))
    assert (code, err) == (0, "")
    assert json.loads(out) == STATUS


def test_status_table_via_environment(loop: Loop, sock_path: str) -> None:
    code, out, _ = finished(ctl("status", env={"SOCKACTD_CONTROL_SOCKET": sock_path}))
    assert code == 0
    assert "phase        serving" in out
    assert "4242  3    serving  17        30.0" in out


def test_console_script(loop: Loop, sock_path: str) -> None:
    script = Path(sys.executable).parent / "sockactctl"
    require(script.exists(), f"needs the sockactctl console script ({script}): pip install -e .")
    result = subprocess.run(
        [str(script), "--control-socket", sock_path, "status", "--json"],
        capture_output=True, text=True, timeout=20, env=child_environ(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["generation"] == 3


def test_missing_socket_is_unreachable(tmp_path: Path) -> None:
    path = str(tmp_path / "nowhere" / "control.sock")
    code, out, err = finished(ctl("--control-socket", path, "reload", "--wait"))
    assert code == 69 == ExitCode.CONTROL_UNREACHABLE
    assert out == ""
    assert path in err and "no such file" in err


def test_client_unreachable_error(tmp_path: Path) -> None:
    with pytest.raises(ControlUnreachable) as caught:
        request(str(tmp_path / "control.sock"), ControlRequest(Command.STATUS))
    assert caught.value.exit_code is ExitCode.CONTROL_UNREACHABLE


def test_master_bug_becomes_a_failure_answer(loop: Loop, sock_path: str) -> None:
    code, _, err = finished(ctl("--control-socket", sock_path, "reload", "--mode", "standard"))
    assert code == ExitCode.CONTROL_FAILED
    assert "internal error" in err and "simulated master bug" in err
    assert request(sock_path, ControlRequest(Command.STATUS)).ok  # the loop survived


# --- standard reload: the next image takes the socket and the waiting clients -----


@pytest.mark.parametrize("moved", [False, True])
def test_handover_to_the_next_image(
    tmp_path: Path, sock_path: str, master: FakeMaster, moved: bool
) -> None:
    old = Loop(ControlServer(sock_path, master.on_request))
    proc = ctl("--control-socket", sock_path, "reload", "--mode", "standard", "--wait")
    wait_until(lambda: master.waiting, 10, "the reload --wait request")
    # what exec_in_place does; dup() stands in for the fds surviving execve
    old.halt()
    handover = old.server.prepare_exec()
    assert len(handover.waiting_fds) == 1
    assert all(os.get_inheritable(fd) for fd in (handover.listen_fd, *handover.waiting_fds))
    new_path = str(tmp_path / "moved" / "control.sock") if moved else sock_path
    successor = FakeMaster()
    server = ControlServer(new_path, successor.on_request, inherited_fd=os.dup(handover.listen_fd))
    waiters = [server.resume(os.dup(fd)) for fd in handover.waiting_fds]
    old.server.close()  # the old image's objects vanish; the path must survive
    new = Loop(server)
    try:
        assert request(new_path, ControlRequest(Command.STATUS)).ok
        new.call(lambda: [w.send(Response(True, "standard reload done")) for w in waiters])
        code, out, _ = finished(proc)
        assert (code, out.strip()) == (0, "standard reload done")
        assert master.requests[0].mode is ReloadMode.STANDARD
        if moved:  # the old name stays behind, stale: nothing answers there any more
            with pytest.raises(ControlUnreachable, match="connection refused"):
                request(sock_path, ControlRequest(Command.STATUS))
    finally:
        new.stop()
    assert not os.path.exists(new_path)


# --- protocol errors and deadlines, with a raw socket ------------------------------


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"cmd": "explode"}\n', "bad request: unknown command 'explode'"),
        (b"reload please\n", "bad request: request is not valid JSON"),
        (b'{"cmd": "reload", "mode": "fast"}\n', "bad request: unknown reload mode 'fast'"),
        (b"x" * 65536, "bad request: request longer than 65536 bytes"),
    ],
)
def test_bad_requests_are_answered(
    loop: Loop, sock_path: str, master: FakeMaster, payload: bytes, message: str
) -> None:
    response = raw_exchange(sock_path, payload)
    assert not response.ok
    assert response.message.startswith(message)
    assert master.requests == []


def test_silent_client_is_dropped_at_its_deadline(loop: Loop, sock_path: str) -> None:
    started = time.monotonic()
    response = raw_exchange(sock_path, b'{"cmd": ')  # never finishes the line
    assert (response.ok, response.message) == (False, "timed out waiting for a request line")
    assert 0.4 <= time.monotonic() - started < 5


def test_large_answer_is_written_without_blocking_the_loop(
    loop: Loop, sock_path: str, master: FakeMaster
) -> None:
    master.status["padding"] = "p" * 2_000_000  # far beyond a socket buffer: partial writes
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(sock_path)
        sock.sendall(b'{"cmd": "status"}\n')
        wait_until(lambda: master.requests, 5, "the status request")
        # the loop must still serve others while our answer waits in its buffer
        other = raw_exchange(sock_path, b'{"cmd": "reload"}\n')
        assert other.message == "reload queued (chain)"
        data = b""
        while chunk := sock.recv(1 << 20):
            data += chunk
    assert json.loads(data)["data"]["padding"] == master.status["padding"]


def test_client_that_never_reads_is_dropped(loop: Loop, sock_path: str, master: FakeMaster) -> None:
    master.status["padding"] = "p" * 2_000_000
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(sock_path)
        sock.sendall(b'{"cmd": "status"}\n')
        wait_until(lambda: master.requests, 5, "the status request")
        listener = loop.server.fileno()
        wait_until(lambda: loop.call(loop.server.fds) == [listener], 5, "write deadline")


# --- peer credentials ---------------------------------------------------------------


def _connect_as_nobody(path: str) -> str:
    """Fork a child that becomes uid/gid 65534, sends a status request; return what it saw."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: only raw syscalls, then _exit
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(path)
                try:
                    sock.sendall(b'{"cmd": "status"}\n')
                except BrokenPipeError:
                    pass  # refused before it read anything; the refusal is waiting for us
                answer = sock.recv(65536)
            os.write(write_fd, answer)
        except BaseException as exc:
            os.write(write_fd, f"error: {type(exc).__name__}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        seen = pipe.read().decode()
    os.waitpid(pid, 0)
    return seen


@pytest.fixture
def shared_dir() -> Iterator[str]:
    # tmp_path sits below /tmp/pytest-of-root (0700): nobody could not even reach the socket
    path = tempfile.mkdtemp(prefix="sockactd-ctl-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def test_other_uid_is_refused_and_logged(
    shared_dir: str, master: FakeMaster, caplog: pytest.LogCaptureFixture
) -> None:
    require(os.geteuid() == 0, "needs root to setuid() a child to nobody (65534)")
    path = os.path.join(shared_dir, "control.sock")
    running = Loop(ControlServer(path, master.on_request))
    try:
        # the 0600 mode alone keeps nobody out ...
        assert _connect_as_nobody(path) == "error: PermissionError"
        # ... and with the mode opened up, SO_PEERCRED still refuses
        os.chmod(path, 0o666)
        with caplog.at_level(logging.WARNING, logger="sockactd.control.server"):
            answer = decode_response(_connect_as_nobody(path).encode())
        assert not answer.ok
        assert answer.message == f"permission denied: uid {NOBODY} may not control this server"
        assert master.requests == []
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(f"uid {NOBODY}" in w and "refused pid" in w for w in warnings), warnings
    finally:
        running.stop()


def test_status_polls_stay_out_of_the_info_log_and_a_reload_is_one_plain_line(
    loop: Loop, sock_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    def control_lines(level: int) -> list[str]:
        return [r.getMessage() for r in caplog.records
                if r.levelno == level and r.getMessage().startswith("control:")]  # fmt: skip

    caplog.set_level(logging.DEBUG, logger="sockactd")
    assert finished(ctl("--control-socket", sock_path, "status"))[0] == 0
    assert control_lines(logging.INFO) == []
    assert len(control_lines(logging.DEBUG)) == 1  # still there for debugging
    proc = ctl("--control-socket", sock_path, "reload", "--mode", "chain")
    assert finished(proc)[0] == 0
    [line] = control_lines(logging.INFO)
    assert line == f"control: reload (mode chain) asked by pid {proc.pid} uid {os.getuid()}"
