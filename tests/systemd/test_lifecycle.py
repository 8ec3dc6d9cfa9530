"""Stop, crash, watchdog and the hardened identity, in a real systemd."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.support import wait_until
from tests.systemd.clients import APP_MODULE, Reply, app_settings, app_source, get
from tests.systemd.sandbox import Sandbox

SERVICE = "sockactd@demo.service"


def serve(sandbox: Sandbox, **settings: object) -> int:
    sandbox.write_code(APP_MODULE, app_source(version=1))
    sandbox.write_config(app_settings(**settings))
    sandbox.systemctl("start", "sockactd@demo.socket", SERVICE)
    assert get(sandbox.port).status == 200
    return int(sandbox.prop(SERVICE, "MainPID"))


def test_stop_lets_an_in_flight_request_finish(sandbox: Sandbox) -> None:
    serve(sandbox)
    replies: list[Reply | Exception] = []

    def slow_request() -> None:
        try:
            replies.append(get(sandbox.port, "/slow", timeout=60))
        except OSError as exc:
            replies.append(exc)

    client = threading.Thread(target=slow_request)
    client.start()
    try:
        marker = sandbox.runtime_path("slow-started")
        wait_until(marker.exists, 10, "the slow request to reach the app")
        sandbox.systemctl("stop", SERVICE)
    finally:
        client.join(timeout=60)
    assert len(replies) == 1 and isinstance(replies[0], Reply), replies
    assert replies[0].status == 200
    assert sandbox.prop(SERVICE, "ActiveState") == "inactive"
    assert sandbox.prop(SERVICE, "Result") == "success"


def test_kill_9_of_the_master_is_restarted_and_queued_clients_are_answered(
    sandbox: Sandbox,
) -> None:
    old_main = serve(sandbox)
    replies: list[Reply | Exception] = []
    lock = threading.Lock()

    def request() -> None:
        try:
            reply = get(sandbox.port, timeout=60)
        except OSError as exc:
            with lock:
                replies.append(exc)
            return
        with lock:
            replies.append(reply)

    # the restarted master's workers take 1.5 s to import: clients meanwhile must queue
    sandbox.write_code(APP_MODULE, app_source(version=2, import_delay=1.5))
    old_processes = sandbox.host_pids(SERVICE)
    sandbox.nsenter("kill", "-KILL", str(old_main))
    # connect only once the old workers are gone too, while the new ones still import (each
    # old one drains on its master's death: seconds on a loaded machine; systemd restarts
    # the service only once they all are gone)
    wait_until(
        lambda: not set(old_processes) & set(sandbox.host_pids(SERVICE)), 30, "old workers to go"
    )
    clients = [threading.Thread(target=request) for _ in range(20)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=90)
    assert [r for r in replies if not isinstance(r, Reply) or r.status != 200] == []
    assert len(replies) == 20
    assert {r.body["version"] for r in replies if isinstance(r, Reply)} == {2}
    sandbox.wait_for(SERVICE, "ActiveState", "active")
    assert int(sandbox.prop(SERVICE, "MainPID")) != old_main
    assert int(sandbox.prop(SERVICE, "NRestarts")) >= 1


def test_a_master_that_stops_pinging_is_killed_and_restarted(sandbox: Sandbox) -> None:
    sandbox.write_dropin(
        SERVICE.replace("demo", ""), "20-watchdog.conf", "[Service]\nWatchdogSec=2\n"
    )
    sandbox.daemon_reload()
    old_main = serve(sandbox)
    assert sandbox.prop(SERVICE, "WatchdogUSec") == "2s"
    # healthy for longer than the watchdog interval: the master does ping
    wait_until(
        lambda: sandbox.prop(SERVICE, "WatchdogTimestampMonotonic") not in ("", "0"),
        5,
        "a first watchdog ping",
    )
    first_ping = sandbox.prop(SERVICE, "WatchdogTimestampMonotonic")
    wait_until(
        lambda: sandbox.prop(SERVICE, "WatchdogTimestampMonotonic") != first_ping,
        5,
        "a second watchdog ping",
    )
    sandbox.nsenter("kill", "-STOP", str(old_main))
    wait_until(
        lambda: (
            sandbox.prop(SERVICE, "MainPID") not in ("0", str(old_main))
            and sandbox.prop(SERVICE, "ActiveState") == "active"
        ),
        45,
        "the watchdog to kill the stopped master and systemd to restart it",
        interval=0.1,
    )
    assert int(sandbox.prop(SERVICE, "NRestarts")) >= 1
    assert get(sandbox.port, timeout=30).status == 200


def test_the_hardened_unit_runs_as_an_unprivileged_dynamic_user(sandbox: Sandbox) -> None:
    serve(sandbox)
    pids = sandbox.host_pids(SERVICE)
    assert len(pids) >= 3  # master and two workers
    for pid in pids:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        uids = {int(u) for u in status["Uid"].split()}
        assert len(uids) == 1 and 61184 <= uids.pop() <= 65519, status["Uid"]  # DynamicUser range
        assert int(status["CapEff"], 16) == 0
        assert int(status["CapBnd"], 16) == 0
        assert status["NoNewPrivs"].strip() == "1"
        assert status["Seccomp"].strip() == "2"  # a filter is in force
    assert get(sandbox.port).body["uid"] != 0
