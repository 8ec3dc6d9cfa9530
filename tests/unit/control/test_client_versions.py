"""client.py against a server that predates control protocol versions (protocol 0).

The fake server answers as sockactd did before versions: it refuses any field it does
not know, with its exact message, and answers a request in its own format.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

from sockactd.control.client import request
from sockactd.control.protocol import Command, ControlRequest
from sockactd.modes import ReloadMode

OLD_FIELDS = {"cmd", "mode", "wait", "timeout"}


def _old_server(path: Path, seen: list[dict[str, object]]) -> threading.Thread:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(4)

    def serve() -> None:
        with listener:
            for _ in range(2):
                conn, _ = listener.accept()
                with conn:
                    obj = json.loads(conn.makefile("rb").readline())
                    seen.append(obj)
                    unknown = sorted(set(obj) - OLD_FIELDS)
                    if unknown:
                        message = f"bad request: unknown field(s) in {obj['cmd']} request: "
                        answer = {"ok": False, "message": message + ", ".join(unknown)}
                    else:
                        answer = {"ok": True, "message": "reload done", "data": None}
                    conn.sendall(json.dumps({"data": None, **answer}).encode() + b"\n")
                    if not unknown:
                        return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_new_client_works_with_an_old_server(tmp_path: Path) -> None:
    seen: list[dict[str, object]] = []
    thread = _old_server(tmp_path / "ctl.sock", seen)
    req = ControlRequest(Command.RELOAD, mode=ReloadMode.CHAIN, wait=True, timeout=30.0)
    response = request(str(tmp_path / "ctl.sock"), req, timeout=10)
    thread.join(10)
    assert response.ok and response.message == "reload done"
    assert response.server is None  # ctl.version_note says the server is older
    assert "protocol" in seen[0]  # tried in its own protocol first, then in protocol 0
    assert seen[1] == {"cmd": "reload", "mode": "chain", "wait": True, "timeout": 30.0}


def test_the_version_note_says_plainly_when_versions_differ() -> None:
    from sockactd import __version__
    from sockactd.control.ctl import version_note
    from sockactd.control.protocol import Response

    assert version_note(Response(True, "", protocol=1, server=__version__)) is None
    note = version_note(Response(True, "", protocol=1, server="0.0.7"))
    assert note is not None and "versions differ" in note
    assert f"this sockactctl is {__version__}" in note
    assert "the server runs sockactd 0.0.7 (control protocol 1)" in note
    old = version_note(Response(True, ""))
    assert old is not None and "a sockactd older than control protocol versions" in old
