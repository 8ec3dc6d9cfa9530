"""The packaging files agree with the tree: units, man pages, version, dependencies, example.

Fast structural checks; building and linting the packages themselves is
scripts/check-packaging (make check-packaging), which CI runs.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import sockactd
from sockactd.config.load import load_config

ROOT = Path(__file__).resolve().parents[2]
SPEC = (ROOT / "packaging" / "rpm" / "sockactd.spec").read_text(encoding="utf-8")
UNITS = sorted(
    p.name for p in (ROOT / "units").glob("*") if p.suffix in {".socket", ".service", ".path"}
)
PAGES = sorted(p.name for p in (ROOT / "man").iterdir() if re.search(r"\.[1-8]$", p.name))
DEMO = ROOT / "packaging" / "examples" / "demo.toml"


def _spec_units() -> list[str]:
    found = re.search(r"^%global units (.*)$", SPEC, re.M)
    assert found is not None
    return found.group(1).split()


@pytest.mark.parametrize("unit", UNITS)
def test_unit_is_in_rpm_scriptlets_and_files(unit: str) -> None:
    # the deb installs units/* by glob; the rpm's scriptlets need each name
    assert unit in _spec_units()
    patterns = re.findall(r"^%\{_unitdir\}/(\S+)$", SPEC, re.M)
    assert any(Path(unit).match(p) for p in patterns), patterns


@pytest.mark.parametrize("page", PAGES)
def test_man_page_is_shipped_by_both_packages(page: str) -> None:
    manpages = (ROOT / "packaging" / "debian" / "sockactd.manpages").read_text().split()
    assert f"man/{page}" in manpages
    section = page.rsplit(".", 1)[1]
    assert f"%{{_mandir}}/man{section}/{page}*" in SPEC


def test_versions_agree() -> None:
    changelog = (ROOT / "packaging" / "debian" / "changelog").read_text(encoding="utf-8")
    assert changelog.startswith(f"sockactd ({sockactd.__version__})")
    assert re.search(rf"^Version:\s+{re.escape(sockactd.__version__)}$", SPEC, re.M)
    assert re.search(rf"^\* .* - {re.escape(sockactd.__version__)}-1$", SPEC, re.M)


def test_debian_build_depends_cover_runtime_dependencies() -> None:
    # dh_python3 derives Depends from pyproject; the build-time tests need the same modules
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    control = (ROOT / "packaging" / "debian" / "control").read_text(encoding="utf-8")
    for requirement in pyproject["project"]["dependencies"]:
        if "python_version >=" in requirement:
            continue  # pyasyncore: only for Python 3.12+, which bookworm does not have
        name = re.match(r"[A-Za-z0-9_.-]+", requirement)
        assert name is not None
        assert f"python3-{name.group(0).lower()} <!nocheck>" in control


def test_demo_config_is_valid_and_serves_the_demo_app() -> None:
    config = load_config(["--config", str(DEMO)], {})
    assert config.module == "sockactd.demo:app"
    from sockactd.demo import app

    assert callable(app)


def test_demo_config_is_installed_as_example() -> None:
    examples = (ROOT / "packaging" / "debian" / "sockactd.examples").read_text().split()
    assert "packaging/examples/demo.toml" in examples
    assert "packaging/examples/demo.toml" in SPEC
