"""`systemctl reload` and the .path trigger units, in a real systemd."""

from __future__ import annotations

import time

import pytest

from tests.support import wait_until
from tests.systemd.clients import APP_MODULE, Load, app_settings, app_source, get
from tests.systemd.sandbox import Sandbox

SERVICE = "sockactd@demo.service"


def serve_version_1(sandbox: Sandbox) -> None:
    sandbox.write_code(APP_MODULE, app_source(version=1))
    sandbox.write_config(app_settings())
    sandbox.systemctl("start", SERVICE)
    assert get(sandbox.port).body["version"] == 1


def test_reload_under_load_loses_nothing_and_returns_when_new_code_serves(
    sandbox: Sandbox,
) -> None:
    serve_version_1(sandbox)
    sandbox.write_code(APP_MODULE, app_source(version=2, import_delay=0.5))
    with Load(sandbox.port, threads=4, max_seconds=90) as load:
        wait_until(lambda: load.count() >= 20, 10, "the load to get going")
        result = sandbox.systemctl("reload", SERVICE, check=False)
        after = [get(sandbox.port).body for _ in range(6)]
        served_during = load.count()
    assert result.returncode == 0, result.stderr + sandbox.log(SERVICE)
    assert load.failures == [], load.failures[:5]
    assert served_during > 20
    assert {body["version"] for body in after} == {2}, after  # reload returned after the switch
    assert sandbox.prop(SERVICE, "ActiveState") == "active"


def test_reload_of_broken_code_fails_and_old_code_keeps_serving(sandbox: Sandbox) -> None:
    serve_version_1(sandbox)
    main_pid = sandbox.prop(SERVICE, "MainPID")
    sandbox.write_code(APP_MODULE, app_source(version=2, broken=True))
    with Load(sandbox.port, threads=2, max_seconds=90) as load:
        result = sandbox.systemctl("reload", SERVICE, check=False)
    assert result.returncode != 0, "systemctl reload succeeded with code that cannot import"
    assert load.failures == [], load.failures[:5]
    assert {reply.body["version"] for reply in load.answers} == {1}
    assert sandbox.show(SERVICE, "ActiveState", "MainPID") == {
        "ActiveState": "active",
        "MainPID": main_pid,
    }
    assert get(sandbox.port).body["version"] == 1


@pytest.mark.parametrize(
    ("unit", "trigger", "mode"),
    [
        ("sockactd-reload", "reload", "standard"),
        ("sockactd-workers-reload", "workers-reload", "workers"),
        ("sockactd-chain-reload", "chain-reload", "chain"),
    ],
)
def test_touching_a_trigger_file_reloads_in_its_mode(
    sandbox: Sandbox, unit: str, trigger: str, mode: str
) -> None:
    serve_version_1(sandbox)
    old_pids = {get(sandbox.port).body["pid"] for _ in range(10)}
    main_pid = sandbox.prop(SERVICE, "MainPID")
    sandbox.systemctl("start", f"{unit}@demo.path")
    sandbox.write_code(APP_MODULE, app_source(version=2))
    oneshot = f"{unit}@demo.service"
    sandbox.state_path(trigger).touch()  # what an operator's deploy script does
    wait_until(
        lambda: sandbox.prop(oneshot, "ExecMainExitTimestampMonotonic") not in ("", "0"),
        60,
        f"{oneshot} to run; its log:\n{sandbox.log(oneshot)}",
        interval=0.05,
    )
    status = sandbox.show(oneshot, "Result", "ExecMainStatus", "ExecMainStartTimestampMonotonic")
    assert status["Result"] == "success", sandbox.log(oneshot) + sandbox.log(SERVICE)
    assert f"reload --mode {mode} --wait" in sandbox.prop(oneshot, "ExecStart")
    bodies = [get(sandbox.port).body for _ in range(10)]
    assert {b["version"] for b in bodies} == {2}
    assert not old_pids & {b["pid"] for b in bodies}, "an old worker still answers"
    assert sandbox.prop(SERVICE, "MainPID") == main_pid  # even standard re-executes in place
    assert f"{mode} reload" in sandbox.log(SERVICE)
    assert sandbox.prop(f"{unit}@demo.path", "ActiveState") == "active"  # watching again


def test_a_reload_request_takes_effect_even_while_start_is_slow(sandbox: Sandbox) -> None:
    """ExecReload= during activation waits for READY=1 (systemd queues the reload job)."""
    sandbox.write_code(APP_MODULE, app_source(version=1, import_delay=2.0))
    sandbox.write_config(app_settings())
    start = sandbox.systemctl_background("start", SERVICE)
    wait_until(lambda: sandbox.prop(SERVICE, "ActiveState") == "activating", 10, "activation")
    began = time.monotonic()
    result = sandbox.systemctl("reload", SERVICE, check=False)
    assert start.wait(timeout=60) == 0
    assert result.returncode == 0, result.stderr + sandbox.log(SERVICE)
    assert time.monotonic() - began >= 1.0  # it waited for the start to finish first
    assert get(sandbox.port).status == 200


def test_idle_socket_activated_instance_reloads_report_no_failure(sandbox: Sandbox) -> None:
    """Socket listening, service never started: a deploy is not a failure (issue 14, #5)."""
    sandbox.write_code(APP_MODULE, app_source(version=1))
    sandbox.write_config(app_settings())
    sandbox.systemctl("start", "sockactd@demo.socket", "sockactd-chain-reload@demo.path")
    sandbox.write_code(APP_MODULE, app_source(version=2))
    deploy = sandbox.systemctl("try-reload-or-restart", SERVICE, check=False)
    assert deploy.returncode == 0, deploy.stderr  # what the docs tell deploy scripts to run
    oneshot = "sockactd-chain-reload@demo.service"
    sandbox.state_path("chain-reload").touch()
    wait_until(
        lambda: (
            sandbox.prop(oneshot, "ExecMainExitTimestampMonotonic") not in ("", "0")
            or sandbox.prop(oneshot, "ConditionTimestampMonotonic") not in ("", "0")
        ),
        30,
        f"{oneshot} to run",
        interval=0.05,
    )
    sandbox.wait_for(oneshot, "ActiveState", "inactive")
    assert sandbox.prop(SERVICE, "ActiveState") == "inactive"  # nothing started it
    assert sandbox.systemctl("--failed", "--no-legend").stdout.strip() == ""
    assert get(sandbox.port, timeout=30).body["version"] == 2  # the next start loads it
