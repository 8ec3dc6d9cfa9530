"""The harness itself: it boots, loads exactly the shipped units, and leaves nothing behind.

These tests use a stub unit (not sockactd) so they say whether the sandbox works,
independently of the server.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.systemd.sandbox import UNITS, Sandbox

STUB = """[Service]
Type=notify
DynamicUser=yes
PrivateTmp=yes
ExecStart=/usr/bin/python3 -c "{code}"
"""
NOTIFY = (
    "import os, socket, time; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
    "s.connect(os.environ['NOTIFY_SOCKET']); s.send(b'READY=1'); print(os.getuid(), flush=True); "
    "time.sleep(600)"
)


def test_only_the_sandbox_units_are_loaded(sandbox: Sandbox) -> None:
    listed = sandbox.systemctl("list-unit-files", "--no-legend", "--type=service").stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    shipped = {p.name for p in UNITS.glob("*.service")}
    assert names == shipped  # nothing of the host's /lib/systemd/system


def test_shipped_units_are_copied_unchanged(sandbox: Sandbox) -> None:
    for unit in UNITS.glob("sockactd*@.*"):
        assert (sandbox.unit_dir / unit.name).read_bytes() == unit.read_bytes()
    drop_in = sandbox.systemctl("cat", "sockactd@demo.service").stdout
    assert "ExecStart=/usr/bin/python3 -m sockactd --config " in drop_in


def test_a_dynamic_user_service_runs_and_leaves_nothing(sandbox: Sandbox) -> None:
    (sandbox.unit_dir / "stub.service").write_text(STUB.format(code=NOTIFY))
    sandbox.daemon_reload()
    sandbox.systemctl("start", "stub.service")
    assert sandbox.prop("stub.service", "ActiveState") == "active"
    pids = sandbox.host_pids("stub.service")
    assert len(pids) == 1
    uid = int(Path(f"/proc/{pids[0]}/status").read_text().split("Uid:")[1].split()[0])
    assert 61184 <= uid <= 65519  # systemd's DynamicUser= range
    assert "systemd-private-" in " ".join(os.listdir("/tmp"))
    compact = sandbox.boot_id_file.read_text().strip().replace("-", "")
    sandbox.destroy()
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert not list(Path("/tmp").glob(f"systemd-private-{compact}-*"))
    sandbox.systemd_pid = 0  # destroyed already; the fixture's second destroy is a no-op
