"""The `sandbox` fixture: a booted throw-away systemd per test (see sandbox.py).

Every test here is marked `systemd`. Without root, unshare, the systemd binary or
Debian's python3 modules the tests skip, and fail instead under SOCKACTD_REQUIRE_ALL=1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import require
from tests.systemd.sandbox import Sandbox, booted_sandbox, missing_requirements


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/systemd/" in str(item.path):
            item.add_marker(pytest.mark.systemd)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    missing = missing_requirements()
    require(missing is None, missing or "")
    with booted_sandbox() as box:
        yield box
