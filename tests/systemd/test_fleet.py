"""A rolling deploy with contrib/ansible over three real hosts, through nginx, under load.

Each host is a package sandbox (its own systemd, overlays on /etc, /usr, /var, /srv and
/opt), the project's .deb installed by apt-get, and an OpenSSH server on its own loopback
address; Ansible reaches them over ssh like real machines (tests/systemd/fleet.py). A
client sends requests through nginx from the first test to the last, and nginx never
retries on another host, so any request a host drops shows up as a failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.nginx import NGINX_BIN, require_nginx
from tests.support import require, wait_until
from tests.systemd.fleet import SERVICE, Fleet, booted_fleet, missing_requirements
from tests.systemd.fleet_clients import PacedLoad, get_json
from tests.systemd.sandbox import missing_requirements as sandbox_missing

SIZE = 3  # hosts: 127.0.0.2, 127.0.0.3, 127.0.0.4
BROKEN = 'raise RuntimeError("release 3 is broken on purpose")'
# --check runs as root and reads the file; the service's dynamic user may not
NEEDS_ROOT = 'open("/etc/fleet-secret").read()'


@pytest.fixture(scope="module")
def fleet(deb: Path) -> Iterator[Fleet]:
    """Three hosts serving release 1 behind nginx; one fleet for the module (booting hosts
    and installing the .deb costs more than the rolls): each test first puts the fleet
    where it needs it with an idempotent deploy."""
    for missing in (sandbox_missing(), missing_requirements()):
        require(missing is None, missing or "")
    require_nginx()
    with booted_fleet(SIZE, deb) as fleet:
        first = fleet.deploy("1", fleet.make_release("1"), serial="100%")
        assert first.returncode == 0, first.output
        yield fleet


@pytest.fixture(scope="module")
def load(fleet: Fleet) -> Iterator[PacedLoad]:
    """Requests through nginx from the first test to the last (bounded: 30 minutes)."""
    assert fleet.nginx is not None
    with PacedLoad(fleet.nginx.port, threads=2, max_seconds=1800) as load:
        wait_until(lambda: load.count() >= 20, 30, "the load through nginx to get going")
        yield load


def serving(fleet: Fleet, asks: int = 6) -> dict[str, set[tuple[object, object]]]:
    """host -> {(release, worker generation)} of `asks` requests straight to its socket."""
    found: dict[str, set[tuple[object, object]]] = {}
    for host in fleet.hosts:
        replies = [get_json(host.address, host.app_port) for _ in range(asks)]
        assert {r["host"] for r in replies} == {host.name}
        found[host.name] = {(r["release"], r["generation"]) for r in replies}
    return found


def releases_of(fleet: Fleet) -> dict[str, set[object]]:
    return {name: {release for release, _ in pairs} for name, pairs in serving(fleet).items()}


def nothing_failed_since(load: PacedLoad, count: int) -> None:
    """No request through nginx failed so far, and requests went on since `count`."""
    assert load.failures == [], load.failures[:5]
    assert load.count() > count, "the load through nginx stopped"


def ensure_release(fleet: Fleet, release: str) -> None:
    """Put every host on `release` (a no-op when the previous test left them there)."""
    source = fleet.sources.get(release) or fleet.make_release(release)
    roll = fleet.deploy(release, source, serial="100%")
    assert roll.returncode == 0, roll.output
    assert releases_of(fleet) == {h.name: {release} for h in fleet.hosts}


def test_serial_roll_moves_every_host_with_no_failed_request_and_same_main_pid(
    fleet: Fleet, load: PacedLoad
) -> None:
    count = load.count()
    pids = fleet.main_pids()
    start = len(load.answers)
    wheel = fleet.make_release("2", wheel=True)  # a pure-Python wheel, unpacked by the role

    roll = fleet.deploy("2", wheel, serial="1")

    assert roll.returncode == 0, roll.output
    assert set(roll.recap) == {h.name for h in fleet.hosts}
    assert all(counts["failed"] == 0 for counts in roll.recap.values()), roll.recap
    assert {h.name: fleet.current(h) for h in fleet.hosts} == {
        h.name: "releases/2" for h in fleet.hosts
    }
    assert releases_of(fleet) == {h.name: {"2"} for h in fleet.hosts}
    assert fleet.main_pids() == pids  # reloaded in place, never restarted
    nothing_failed_since(load, count)
    # nginx spread the load over every host, and every host served release 2 through it
    served = load.served(start)
    assert {(h.name, "2") for h in fleet.hosts} <= served, served


def test_release_that_cannot_import_stops_the_roll_at_the_first_host(
    fleet: Fleet, load: PacedLoad
) -> None:
    count = load.count()
    ensure_release(fleet, "2")
    pids = fleet.main_pids()
    before = serving(fleet)

    roll = fleet.deploy("3", fleet.make_release("3", extra=BROKEN), serial="1")

    assert roll.returncode != 0, roll.output
    first, *rest = fleet.hosts
    assert "rejected release 3" in roll.output, roll.output
    assert "RuntimeError: release 3 is broken on purpose" in roll.output, roll.output
    assert f"{first.name} is back on release 2" in roll.output, roll.output
    assert roll.recap[first.name]["failed"] == 1, roll.recap
    assert set(roll.recap) == {first.name}, roll.recap  # no other host was in the play
    for host in rest:  # never touched: not even the release's files arrived
        assert host.run("test", "-e", "/srv/app/releases/3.tar.gz", check=False).returncode == 1
    assert {h.name: fleet.current(h) for h in fleet.hosts} == {
        h.name: "releases/2" for h in fleet.hosts
    }
    assert serving(fleet) == before  # same release, same generation: nothing reloaded
    assert fleet.main_pids() == pids
    nothing_failed_since(load, count)


def test_release_the_service_cannot_load_fails_its_reload_and_is_rolled_back(
    fleet: Fleet, load: PacedLoad
) -> None:
    """The reload is the gate: `sockactd --check` (run as root) passes, the service's
    dynamic user cannot read a file the release opens, the chain reload aborts."""
    count = load.count()
    ensure_release(fleet, "2")
    for host in fleet.hosts:
        host.run("sh", "-c", "echo secret > /etc/fleet-secret && chmod 0600 /etc/fleet-secret")
    pids = fleet.main_pids()

    roll = fleet.deploy("3b", fleet.make_release("3b", extra=NEEDS_ROOT), serial="1")

    assert roll.returncode != 0, roll.output
    first, *rest = fleet.hosts
    assert "PermissionError" in roll.output, roll.output
    assert "chain reload aborted" in roll.output, roll.output
    assert f"{first.name} is back on release 2, reloaded" in roll.output, roll.output
    assert set(roll.recap) == {first.name}, roll.recap
    for host in rest:
        assert host.run("test", "-e", "/srv/app/releases/3b.tar.gz", check=False).returncode == 1
    assert {h.name: fleet.current(h) for h in fleet.hosts} == {
        h.name: "releases/2" for h in fleet.hosts
    }
    assert releases_of(fleet) == {h.name: {"2"} for h in fleet.hosts}
    assert fleet.main_pids() == pids
    assert first.show(SERVICE, "ActiveState")["ActiveState"] == "active"
    nothing_failed_since(load, count)


def test_check_mode_changes_nothing_and_a_second_run_reloads_nothing(
    fleet: Fleet, load: PacedLoad
) -> None:
    count = load.count()
    ensure_release(fleet, "2")
    pids = fleet.main_pids()
    before = serving(fleet)

    dry = fleet.deploy("4", fleet.make_release("4"), "--check", "--diff", serial="100%")

    assert dry.returncode == 0, dry.output
    assert set(dry.recap) == {h.name for h in fleet.hosts}, dry.recap
    assert all(counts["changed"] > 0 for counts in dry.recap.values()), dry.recap
    assert '"src": "releases/4"' in dry.output, dry.output  # the diff of `current`
    for host in fleet.hosts:
        assert fleet.current(host) == "releases/2"
        assert host.run("test", "-e", "/srv/app/releases/4.tar.gz", check=False).returncode == 1

    again = fleet.deploy("2", fleet.sources["2"], serial="100%")

    assert again.returncode == 0, again.output
    assert {h: c["changed"] for h, c in again.recap.items()} == {h.name: 0 for h in fleet.hosts}
    assert serving(fleet) == before  # same generation everywhere: nothing was reloaded
    assert fleet.main_pids() == pids
    nothing_failed_since(load, count)


def test_optional_nginx_hook_takes_each_host_out_and_puts_it_back(
    fleet: Fleet, load: PacedLoad
) -> None:
    """sockactd_lb=nginx: the host's `server` line is marked down and nginx reloaded
    before its switch, and the mark removed after its reload, one host at a time."""
    count = load.count()
    nginx = fleet.nginx
    assert nginx is not None
    ensure_release(fleet, "2")
    reloads = nginx.error_log.read_text().count("(SIGHUP) received")
    hook = {
        "sockactd_lb": "nginx",
        "sockactd_lb_nginx_upstream_file": str(nginx.conf_path),
        "sockactd_lb_nginx_reload_command": [
            NGINX_BIN, "-p", f"{nginx.prefix}/", "-c", str(nginx.conf_path), "-s", "reload",
        ],
    }  # fmt: skip

    roll = fleet.deploy("5", fleet.make_release("5"), "-e", json.dumps(hook), serial="1")

    assert roll.returncode == 0, roll.output
    for host in fleet.hosts:  # each one was marked down, then up again
        assert f"Mark {host.upstream} down in nginx" in roll.output
        assert f"server {host.upstream};" in nginx.conf_path.read_text()
    assert " down;" not in nginx.conf_path.read_text()
    wait_until(
        lambda: nginx.error_log.read_text().count("(SIGHUP) received") == reloads + 2 * SIZE,
        30, "nginx to log one reload per mark",
    )  # fmt: skip
    assert releases_of(fleet) == {h.name: {"5"} for h in fleet.hosts}
    nothing_failed_since(load, count)
