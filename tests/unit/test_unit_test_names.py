"""Every unit-test file has a basename of its own.

The RPM build's %check runs `pytest --import-mode=append tests/unit`
(packaging/rpm/sockactd.spec): in that mode two test files with one basename are one
module name, and collection stops with "import file mismatch" -- the package build
fails although the project's own runs (--import-mode=importlib) pass. The same holds
for conftest.py: tests/unit has no __init__.py, so two of them are two modules named
`conftest`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

UNIT = Path(__file__).resolve().parent


def test_no_two_unit_test_files_share_a_basename() -> None:
    names = Counter(path.name for path in UNIT.rglob("test_*.py"))
    assert sorted(name for name, count in names.items() if count > 1) == []
    assert names["test_unit_test_names.py"] == 1  # the scan sees this very file


def test_tests_unit_has_one_conftest() -> None:
    assert [p.relative_to(UNIT).as_posix() for p in UNIT.rglob("conftest.py")] == ["conftest.py"]
