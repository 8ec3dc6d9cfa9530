"""Static checks of the shipped units: `systemd-analyze verify` and `security`.

verify insists that ExecStart= binaries exist, and /usr/bin/sockactd is not
installed on a development machine. The units are therefore verified from a
temporary copy in which exactly the console-script paths and the packaged helper
(SCRIPTS) point at stub executables in the same temporary directory; the test
asserts that nothing else differs from the shipped file. Drop-in examples are verified as drop-ins.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT, require

UNITS = ROOT / "units"
INSTANCES = [
    "sockactd@demo.socket",
    "sockactd@demo.service",
    "sockactd-reload@demo.path",
    "sockactd-reload@demo.service",
    "sockactd-workers-reload@demo.path",
    "sockactd-workers-reload@demo.service",
    "sockactd-chain-reload@demo.path",
    "sockactd-chain-reload@demo.service",
]
SCRIPTS = ("/usr/bin/sockactd", "/usr/bin/sockactctl", "/usr/libexec/sockactd/prepare-instance")
MAX_EXPOSURE = 1.5


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    require(found is not None, "needs systemd-analyze (package systemd)")
    assert found is not None
    return found


def systemd_version() -> int:
    out = subprocess.run([analyze(), "--version"], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[1])


def stage_units(into: Path) -> Path:
    """Copy units/ to `into`, console scripts pointed at stubs there; returns the unit dir."""
    stubs, units = into / "bin", into / "units"
    stubs.mkdir()
    units.mkdir()
    for script in SCRIPTS:
        stub = stubs / Path(script).name
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    for unit in UNITS.glob("sockactd*@.*"):
        text = unit.read_text()
        staged = text
        for script in SCRIPTS:
            staged = staged.replace(f"{script} ", f"{stubs}/{Path(script).name} ")
        restored = staged
        for script in SCRIPTS:
            restored = restored.replace(f"{stubs}/{Path(script).name} ", f"{script} ")
        assert restored == text  # nothing else was touched
        (units / unit.name).write_text(staged)
    return units


def verify(units: Path, *names: str) -> str:
    result = subprocess.run(
        [analyze(), "verify", "--man=no", *names],
        cwd=units, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return (result.stdout + result.stderr).strip() + ("" if result.returncode == 0 else " [rc!=0]")


def test_every_unit_is_staged() -> None:
    shipped = sorted(p.name for p in UNITS.glob("sockactd*@.*"))
    assert sorted(name.replace("@demo", "@") for name in INSTANCES) == shipped


@pytest.mark.parametrize("instance", INSTANCES)
def test_verify_is_silent(instance: str, tmp_path: Path) -> None:
    assert verify(stage_units(tmp_path), instance) == ""


@pytest.mark.parametrize("example", ["tcp.conf", "http.conf"])
def test_verify_socket_drop_in(example: str, tmp_path: Path) -> None:
    units = stage_units(tmp_path)
    (units / "sockactd@.socket.d").mkdir()
    shutil.copy(UNITS / "examples" / example, units / "sockactd@.socket.d" / example)
    assert verify(units, "sockactd@demo.socket", "sockactd@demo.service") == ""


def test_verify_notify_reload_drop_in(tmp_path: Path) -> None:
    units = stage_units(tmp_path)
    (units / "sockactd@.service.d").mkdir()
    example = UNITS / "examples" / "notify-reload.conf"
    shutil.copy(example, units / "sockactd@.service.d" / "notify-reload.conf")
    out = verify(units, "sockactd@demo.service")
    if systemd_version() >= 253:
        assert out == ""
    else:  # this systemd predates notify-reload: those two settings, and only them, are unknown
        complaints = out.splitlines()
        assert len(complaints) == 2, out
        assert "notify-reload" in complaints[0]
        assert "ReloadSignal" in complaints[1]


@pytest.mark.parametrize("unit", sorted(p.name for p in UNITS.glob("*.service")))
def test_security_exposure(unit: str) -> None:
    result = subprocess.run(
        [analyze(), "security", "--offline=true", "--no-pager", str(UNITS / unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_service_contract() -> None:
    """The directives other parts of sockactd rely on (decisions.md), spelled exactly."""
    text = (UNITS / "sockactd@.service").read_text()
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=/usr/bin/sockactd --config /etc/sockactd/%i.toml",
        "ExecReload=/usr/bin/sockactctl --control-socket /run/sockactd/%i/control.sock "
        "reload --wait",
        "KillMode=mixed",
        "RuntimeDirectory=sockactd/%i",
        "DynamicUser=yes",
        "CapabilityBoundingSet=",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.MULTILINE), line
    nofile = re.search(r"^LimitNOFILE=(\d+)$", text, re.MULTILINE)
    assert nofile is not None and int(nofile.group(1)) >= 65536  # idle clients hold fds
    stop = re.search(r"^TimeoutStopSec=(\d+)$", text, re.MULTILINE)
    assert stop is not None and int(stop.group(1)) > 60  # above worker-reload-mercy's default


@pytest.mark.parametrize(
    ("prefix", "trigger", "mode"),
    [
        ("sockactd-reload", "reload", "standard"),
        ("sockactd-workers-reload", "workers-reload", "workers"),
        ("sockactd-chain-reload", "chain-reload", "chain"),
    ],
)
def test_path_pairs(prefix: str, trigger: str, mode: str) -> None:
    path = (UNITS / f"{prefix}@.path").read_text()
    assert f"PathChanged=/var/lib/sockactd/%i/{trigger}\n" in path
    assert f"Unit={prefix}@%i.service\n" in path
    service = (UNITS / f"{prefix}@.service").read_text()
    assert "Type=oneshot\n" in service
    assert (
        "ExecStart=/usr/bin/sockactctl --control-socket /run/sockactd/%i/control.sock "
        f"reload --mode {mode} --wait\n"
    ) in service
