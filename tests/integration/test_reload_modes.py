"""The three reload modes under continuous load, as an operator deploys.

A deploy here is: rewrite the app file in a temporary directory (VERSION, or a
broken version), then ask for a reload. Under load from real HTTP clients on
loopback (new connection per request), each test checks what a user would:
no failed request of any kind, and afterwards every answer comes from the new
generation with the new code -- or, for broken code, the old one still serves
and `sockactctl reload --wait` says why.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from sockactd.errors import ExitCode
from tests.integration.server import Load, Server, get_json, running
from tests.support import ROOT, free_port, wait_until

MODES = ["standard", "workers", "chain"]


def deploy(
    site: Path, *, version: str = "v2", broken: str | None = None, import_delay: float | None = None
) -> None:
    """Rewrite site_app.py as a deploy would (atomically, like rsync or a package manager)."""
    source = (ROOT / "tests" / "apps" / "site_app.py").read_text()
    source = source.replace('VERSION = "v1"', f'VERSION = "{version}"')
    if import_delay is not None:
        source = source.replace("IMPORT_DELAY = 0.0", f"IMPORT_DELAY = {import_delay}")
    if broken is not None:
        source += f"\n{broken}\n"
    tmp = site / "site_app.py.new"
    tmp.write_text(source)
    os.replace(tmp, site / "site_app.py")


def start_site(
    tmp_path: Path, *extra: str, lazy: bool = True, app_extra: str | None = None
) -> tuple[Server, int, Path]:
    """Serve v1 of the site (with `app_extra` appended to its module) on a free port."""
    site = tmp_path / "site"
    site.mkdir()
    deploy(site, version="v1", broken=app_extra)
    port = free_port()
    args = [
        "--http-socket",
        f"127.0.0.1:{port}",
        "--pythonpath",
        str(site),
        "--processes",
        "2",
        *(["--lazy-apps"] if lazy else []),
        *extra,
        "site_app:app",
    ]
    return Server(tmp_path, args).start(), port, site


def answers(port: int, count: int = 20) -> set[tuple[int, str]]:
    return {
        (int(d["generation"]), str(d["version"])) for d in (get_json(port) for _ in range(count))
    }


@pytest.mark.parametrize("mode", MODES)
def test_reload_under_load_drops_nothing_and_serves_new_code(tmp_path: Path, mode: str) -> None:
    srv, port, site = start_site(tmp_path)
    try:
        master = srv.pid
        with Load(port, threads=4, limit=60) as load:
            load.wait_requests(100)
            deploy(site, version="v2")
            result = srv.ctl("reload", "--mode", mode, "--wait")
            assert result.returncode == 0, result.stderr + srv.log()
            load.wait_requests(100)
        assert load.failures == {}, load.failures
        assert answers(port) == {(2, "v2")}
        assert srv.pid == master and Path(f"/proc/{master}").exists()  # same master PID
        status = srv.status()
        assert status["generation"] == 2
        assert {w["generation"] for w in status["workers"]} == {2}  # type: ignore[union-attr]
    finally:
        srv.stop()


@pytest.mark.parametrize("mode", MODES)
def test_broken_code_never_goes_live(tmp_path: Path, mode: str) -> None:
    srv, port, site = start_site(tmp_path)
    try:
        with Load(port, threads=4, limit=60) as load:
            load.wait_requests(50)
            deploy(site, version="v2", broken="raise ImportError('no module named flask_pony')")
            result = srv.ctl("reload", "--mode", mode, "--wait")
            load.wait_requests(50)
        assert result.returncode == ExitCode.CONTROL_FAILED, result
        assert "flask_pony" in result.stderr
        assert load.failures == {}, load.failures
        assert answers(port) == {(1, "v1")}
        status = srv.status()
        assert status["phase"] == "serving"
        assert status["last_reload"]["ok"] is False  # type: ignore[index]
        assert srv.notify is not None
        assert srv.notify.seen("READY", "1")[-1]["STATUS"].startswith(f"{mode} reload aborted")
        # the next reload can try again, once the code is fixed
        deploy(site, version="v3")
        assert srv.ctl("reload", "--mode", mode, "--wait").returncode == 0
        assert {v for _, v in answers(port)} == {"v3"}
    finally:
        srv.stop()


@pytest.mark.parametrize("mode", ["workers", "chain"])
def test_worker_hanging_at_import_is_aborted_by_ready_timeout(tmp_path: Path, mode: str) -> None:
    srv, port, site = start_site(tmp_path, "--ready-timeout", "1")
    try:
        with Load(port, threads=2, limit=60) as load:
            deploy(site, version="v2", import_delay=60)
            result = srv.ctl("reload", "--mode", mode, "--wait")
            load.wait_requests(20)
        assert result.returncode == ExitCode.CONTROL_FAILED and "ready-timeout" in result.stderr, (
            result
        )
        assert load.failures == {}, load.failures
        assert answers(port) == {(1, "v1")}
    finally:
        srv.stop()


def test_standard_reload_whose_check_hangs_at_import_is_aborted_by_ready_timeout(
    tmp_path: Path,
) -> None:
    """Issue 12 item 4: the pre-flight check had no deadline; the reload never ended."""
    srv, port, site = start_site(tmp_path, "--ready-timeout", "3", lazy=False)
    try:
        master = srv.pid
        with Load(port, threads=2, limit=60) as load:
            deploy(site, version="v2", import_delay=60)
            result = srv.ctl("reload", "--mode", "standard", "--wait", timeout=30)
            load.wait_requests(20)
        assert result.returncode == ExitCode.CONTROL_FAILED, result
        assert "ready-timeout" in result.stderr, result
        assert load.failures == {}, load.failures
        assert answers(port) == {(1, "v1")}
        assert srv.status()["phase"] == "serving"
        assert not [p for p in _children_of(master) if _cmdline(p).count("--check")]
        deploy(site, version="v3")  # the next reload works
        assert srv.ctl("reload", "--mode", "standard", "--wait").returncode == 0, srv.log()
        assert {v for _, v in answers(port)} == {"v3"}
        assert srv.pid == master
    finally:
        srv.stop()


# Appended to v1: its workers block SIGTERM, so they never confirm that they stopped
# accepting -- as a hung worker, or one starved of CPU for longer than any timer.
_NEVER_TAKES_SIGTERM = """
import signal as _signal
if os.environ.get("SOCKACTD_GENERATION") == "1":
    _signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGTERM})
"""


@pytest.mark.parametrize("mode", MODES)
def test_reload_is_done_only_when_no_old_worker_can_accept(tmp_path: Path, mode: str) -> None:
    """`reload --wait` returned while a retired worker still accepted and answered v1.

    Done used to mean "SIGTERM sent and confirmed, or 2 s passed" (workers, chain), and
    at once after a standard reload, whose new image took the adopted workers for
    ones that had stopped accepting. A retired worker that never confirms is now
    killed after worker-reload-mercy, and the reload is done once it has exited.
    """
    srv, port, site = start_site(tmp_path, "--worker-reload-mercy", "5",
                                 app_extra=_NEVER_TAKES_SIGTERM)  # fmt: skip
    try:
        old = [int(w["pid"]) for w in srv.status()["workers"]]  # type: ignore[attr-defined]
        deploy(site, version="v2")
        result = srv.ctl("reload", "--mode", mode, "--wait")
        assert result.returncode == 0, result.stderr + srv.log()
        assert answers(port) == {(2, "v2")}
        assert [pid for pid in old if Path(f"/proc/{pid}").exists()] == [], srv.log()
        # idle (SIGTERM blocked, no request): killed, and not said to be busy
        assert re.search(r"worker \d+ did not exit within its mercy, in no request: .*; killing it",
                         srv.log()), srv.log()  # fmt: skip
        assert "still busy" not in srv.log()
    finally:
        srv.stop()


def _children_of(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except FileNotFoundError:
        return ""


def test_standard_reload_picks_up_changed_settings_with_the_same_pid(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(ROOT / "tests" / "apps" / "site_app.py", site / "site_app.py")
    port = free_port()
    config = tmp_path / "site.toml"
    text = (
        f'http-socket = ["127.0.0.1:{port}"]\npythonpath = ["{site}"]\n'
        'module = "site_app:app"\nprocesses = 2\n'
    )
    config.write_text(text)
    with running(tmp_path, "--config", str(config)) as srv:
        config.write_text(text.replace("processes = 2", "processes = 3"))
        result = srv.ctl("reload", "--mode", "standard", "--wait")
        assert result.returncode == 0, result.stderr + srv.log()
        status = srv.status()
        assert status["pid"] == srv.pid
        assert len(status["workers"]) == 3  # type: ignore[arg-type]


def test_standard_reload_with_broken_config_keeps_the_old_master(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(ROOT / "tests" / "apps" / "site_app.py", site / "site_app.py")
    port = free_port()
    config = tmp_path / "site.toml"
    text = f'http-socket = ["127.0.0.1:{port}"]\npythonpath = ["{site}"]\nmodule = "site_app:app"\n'
    config.write_text(text)
    with running(tmp_path, "--config", str(config)) as srv:
        config.write_text(text + "processes = 'many'\n")
        result = srv.ctl("reload", "--mode", "standard", "--wait")
        assert result.returncode == ExitCode.CONTROL_FAILED and "processes" in result.stderr, result
        assert answers(port) == {(1, "v1")}


def test_preloaded_app_refuses_workers_and_chain_reload(tmp_path: Path) -> None:
    srv, port, site = start_site(tmp_path, lazy=False)
    try:
        for mode in ("workers", "chain"):
            result = srv.ctl("reload", "--mode", mode, "--wait")
            assert result.returncode == ExitCode.CONTROL_FAILED
            assert "lazy-apps" in result.stderr and "standard" in result.stderr
        deploy(site, version="v2")  # a standard reload does load new code into the master
        assert srv.ctl("reload", "--mode", "standard", "--wait").returncode == 0
        assert answers(port) == {(2, "v2")}
    finally:
        srv.stop()


def test_sighup_reloads_in_the_default_mode_and_tells_systemd(tmp_path: Path) -> None:
    srv, port, site = start_site(tmp_path)
    try:
        assert srv.notify is not None
        before = len(srv.notify.poll())
        deploy(site, version="v2")
        srv.signal(signal.SIGHUP)
        reloading = srv.notify.wait_for("RELOADING", "1", after=before)
        assert (
            int(reloading["MONOTONIC_USEC"]) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        )
        assert reloading["STATUS"].startswith("chain reload")
        ready = srv.notify.wait_for("READY", "1", after=before)
        assert ready["STATUS"].startswith("serving")
        assert answers(port) == {(2, "v2")}
    finally:
        srv.stop()


def test_reloads_asked_during_a_reload_are_queued_and_merged(tmp_path: Path) -> None:
    srv, _port, site = start_site(tmp_path)
    try:
        # long enough that the four later sockactctl processes (each a Python start-up,
        # a second or more on a loaded machine) all arrive while the first reload runs
        deploy(site, version="v2", import_delay=2.5)
        results: dict[str, int] = {}

        def ask(name: str, mode: str) -> None:
            results[name] = srv.ctl("reload", "--mode", mode, "--wait").returncode

        first = threading.Thread(target=ask, args=("first", "chain"))
        first.start()
        wait_until(lambda: srv.status()["phase"] == "reloading", 10, "the first reload")
        others = [threading.Thread(target=ask, args=(f"chain{i}", "chain")) for i in range(3)]
        others.append(threading.Thread(target=ask, args=("workers", "workers")))
        for thread in others:
            thread.start()
        for thread in [first, *others]:
            thread.join(120)
        assert results == {"first": 0, "chain0": 0, "chain1": 0, "chain2": 0, "workers": 0}
        started = re.findall(r"(\w+) reload started", srv.log())
        # the first, then one chain for the three merged requests and one workers reload,
        # in the order the queued requests happened to arrive
        assert started[0] == "chain" and sorted(started[1:]) == ["chain", "workers"], started
    finally:
        srv.stop()


@pytest.mark.parametrize("how", ["touch", "rename", "recreate", "create"])
def test_trigger_file_reloads(tmp_path: Path, how: str) -> None:
    trigger = tmp_path / "deploy" / "reload-chain"
    trigger.parent.mkdir()
    if how != "create":
        trigger.write_text("")
    srv, port, site = start_site(tmp_path, "--touch-chain-reload", str(trigger))
    try:
        deploy(site, version="v2")
        if how == "touch":
            os.utime(trigger)
        elif how == "rename":
            (trigger.parent / "tmp").write_text("x")
            os.replace(trigger.parent / "tmp", trigger)
        elif how == "recreate":
            trigger.unlink()
            trigger.write_text("again")
        else:
            trigger.write_text("")
        wait_until(lambda: answers(port, 4) == {(2, "v2")}, 20, "the new generation")
    finally:
        srv.stop()


def test_burst_of_touches_is_one_or_two_reloads(tmp_path: Path) -> None:
    trigger = tmp_path / "reload-workers"
    trigger.write_text("")
    srv, port, site = start_site(tmp_path, "--touch-workers-reload", str(trigger))
    try:
        deploy(site, version="v2")
        for _ in range(50):
            os.utime(trigger)
        wait_until(lambda: "workers reload done" in srv.log(), 20, "the reload")
        wait_until(lambda: srv.status()["phase"] == "serving", 20, "serving again")
        assert 1 <= srv.log().count("workers reload started") <= 2
        assert answers(port) <= {(2, "v2"), (3, "v2")}
    finally:
        srv.stop()


def test_standard_reload_drain_first_works_like_uwsgi(tmp_path: Path) -> None:
    srv, port, site = start_site(tmp_path, "--drain-first")
    try:
        master = srv.pid
        deploy(site, version="v2")
        result = srv.ctl("reload", "--mode", "standard", "--wait")
        assert result.returncode == 0, result.stderr + srv.log()
        assert answers(port) == {(2, "v2")} and srv.status()["pid"] == master
        log = srv.log()
        # uWSGI's order: both old workers are gone before the master re-executes
        retired = [m.start() for m in re.finditer(r"\(generation 1\) retired", log)]
        assert len(retired) == 2 and max(retired) < log.index("re-executing master"), log
    finally:
        srv.stop()


def test_reload_asked_while_starting_runs_once_serving(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    source = (ROOT / "tests" / "apps" / "site_app.py").read_text()
    (site / "site_app.py").write_text(source.replace("IMPORT_DELAY = 0.0", "IMPORT_DELAY = 1.5"))
    port = free_port()
    args = ["--http-socket", f"127.0.0.1:{port}", "--pythonpath", str(site), "--lazy-apps",
            "site_app:app"]  # fmt: skip
    srv = Server(tmp_path, args).start(wait_ready=False)
    try:
        wait_until(lambda: Path(srv.control).exists(), 10, "the control socket")
        assert srv.status()["phase"] == "starting"
        result = srv.ctl("reload", "--mode", "chain", "--wait")
        assert result.returncode == 0, result.stderr + srv.log()
        assert answers(port, 4) == {(2, "v1")}
    finally:
        srv.stop()
