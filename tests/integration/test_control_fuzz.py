"""The control socket under hostile input, against a real master that serves throughout.

Issue 12, item 3: one 2,001-byte line of nested JSON raised RecursionError in
the master and ended it (exit 1, site down). What an operator checks: whatever
arrives on the control socket -- random bytes, structured JSON of any shape,
lines up to and past the size limit, half lines, floods of connections -- the
master answers with an error (or closes a half line), keeps serving HTTP, and
`sockactctl status` still works afterwards.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sockactd.control.protocol import MAX_LINE
from tests.integration.server import Server, get_json
from tests.integration.test_reload_modes import start_site
from tests.support import wait_until


def exchange(path: str, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data`, half-close, and read until the server closes. b"" when it said nothing."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered a line that was too long before we finished it
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
        return reply


def connect(path: str) -> socket.socket:
    """Connect, retrying while the listen backlog is full (AF_UNIX says EAGAIN then)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)

    def attempt() -> bool:
        try:
            sock.connect(path)
        except BlockingIOError:
            return False
        return True

    wait_until(attempt, 10, "room in the control socket's backlog")
    return sock


def check_reply(line: bytes, reply: bytes) -> None:
    complete = b"\n" in line[:MAX_LINE]
    if not complete and len(line) < MAX_LINE:
        return  # a half line: the server may close without a word
    assert reply.endswith(b"\n"), (line[:200], reply[:200])
    answer = json.loads(reply)
    assert isinstance(answer["ok"], bool) and isinstance(answer["message"], str)


def json_values() -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["cmd", "mode", "wait", "timeout", "data"]) | st.text(max_size=8)
    leaves = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.sampled_from(["status", "reload", "chain", "workers", "standard", "explode"])
        | st.text(max_size=20)
    )
    return st.recursive(
        leaves, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=4)
    )


def requests() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"cmd": st.sampled_from(["status", "reload", "explode", ""])},
        optional={"mode": json_values(), "wait": st.just(False) | json_values(),
                  "timeout": json_values(), "junk": json_values()},
    )  # fmt: skip


def nested(depth: int, opener: bytes) -> bytes:
    closer = b"]" if opener == b"[" else b"}"
    if opener == b"{":
        return b'{"a":' * depth + b"1" + closer * depth
    return opener * depth + closer * depth


LINES = st.one_of(
    st.binary(max_size=2048).map(lambda b: b + b"\n"),
    json_values().map(lambda v: json.dumps(v).encode() + b"\n"),
    requests().map(lambda v: json.dumps(v).encode() + b"\n"),
    st.builds(nested, st.integers(1, MAX_LINE // 6), st.sampled_from([b"[", b"{"])).map(
        lambda b: b[: MAX_LINE - 1] + b"\n"
    ),
    st.integers(0, MAX_LINE + 1024).map(lambda n: b"x" * n + b"\n"),  # sizes up to the limit
    st.binary(min_size=1, max_size=4096).filter(lambda b: b"\n" not in b),  # half lines
)


def master_serves(srv: Server, port: int) -> None:
    assert srv.process is not None and srv.process.poll() is None, srv.log()[-3000:]
    assert get_json(port)["version"] == "v1"


def test_nested_json_line_gets_an_error_and_the_master_keeps_serving(tmp_path: Path) -> None:
    srv, port, _site = start_site(tmp_path)
    try:
        reply = exchange(srv.control, b"[" * 1000 + b"]" * 1000 + b"\n")
        answer = json.loads(reply)
        assert answer["ok"] is False and "deeper than" in answer["message"]
        master_serves(srv, port)
        assert srv.status()["phase"] == "serving"
    finally:
        srv.stop()


def test_fuzzed_control_lines_and_floods_never_stop_the_master(tmp_path: Path) -> None:
    srv, port, _site = start_site(tmp_path)
    try:

        @settings(
            max_examples=300,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(LINES)
        def one_line(line: bytes) -> None:
            check_reply(line, exchange(srv.control, line))
            assert srv.process is not None and srv.process.poll() is None, srv.log()[-3000:]

        one_line()
        master_serves(srv, port)
        # a flood: more clients at once than the server admits (64), each with a bad line
        socks = []
        for _ in range(100):
            socks.append(connect(srv.control))
        for sock in socks:
            try:
                sock.sendall(b"[" * 5000 + b"\n")
            except BrokenPipeError:
                pass  # one past the 64 admitted: refused with "server busy" and closed
        for sock in socks:
            with sock:
                answer = json.loads(sock.makefile("rb").readline())
                assert answer["ok"] is False
        master_serves(srv, port)
        assert srv.status()["phase"] in ("serving", "reloading")
    finally:
        srv.stop()
