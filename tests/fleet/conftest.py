"""The `fleet` fixture: three hosts serving release 1 behind nginx, under load all along.

One fleet per module (booting hosts and installing the .deb into each costs more than
all the rolls together); the tests run in file order and each one first puts the fleet
where it needs it (an idempotent deploy). Every test here is marked `systemd`: without
root, systemd, OpenSSH, ansible-core or the Debian build tools it skips, and fails
instead under SOCKACTD_REQUIRE_ALL=1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fleet.fleet import Fleet, PacedLoad, booted_fleet, missing_requirements
from tests.integration.nginx import require_nginx
from tests.support import require, wait_until

SIZE = 3  # hosts: 127.0.0.2, 127.0.0.3, 127.0.0.4


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fleet/" in str(item.path):
            item.add_marker(pytest.mark.systemd)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    missing = missing_requirements()
    require(missing is None, missing or "")
    require_nginx()
    with booted_fleet(SIZE) as fleet:
        first = fleet.deploy("1", fleet.make_release("1"), serial="100%")
        assert first.returncode == 0, first.output
        yield fleet


@pytest.fixture(scope="module")
def load(fleet: Fleet) -> Iterator[PacedLoad]:
    """Requests through nginx from the first test to the last (bounded: 15 minutes)."""
    assert fleet.nginx is not None
    with PacedLoad(fleet.nginx.port, threads=2, max_seconds=900) as load:
        wait_until(lambda: load.count() >= 20, 30, "the load through nginx to get going")
        yield load
