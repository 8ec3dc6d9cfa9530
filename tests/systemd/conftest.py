"""Fixtures: `sandbox` (a booted checkout sandbox), `host` (a booted package sandbox) and
`deb` (this tree built into a .deb once per session). See sandbox.py.

Every test here is marked `systemd`. Without root, unshare, the systemd binary or
Debian's python3 modules the tests skip, and fail instead under SOCKACTD_REQUIRE_ALL=1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import require
from tests.systemd.debs import build_deb, deb_tools_missing, tree_version
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


@pytest.fixture
def host() -> Iterator[Sandbox]:
    """A fresh package sandbox: nothing of sockactd installed yet."""
    missing = missing_requirements()
    require(missing is None, missing or "")
    with booted_sandbox(packaged=True) as box:
        yield box


@pytest.fixture(scope="session")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/sockactd_VERSION_all.deb built from this checkout (`make deb`, tests skipped)."""
    missing = deb_tools_missing()
    require(missing is None, missing or "")
    return build_deb(tmp_path_factory.mktemp("deb"))


@pytest.fixture(scope="session")
def next_deb(tmp_path_factory: pytest.TempPathFactory, deb: Path) -> Path:
    """The same tree as version N+1 (VERSION+up1 sorts after VERSION): the upgrade."""
    return build_deb(tmp_path_factory.mktemp("next-deb"), version=tree_version() + "+up1")
