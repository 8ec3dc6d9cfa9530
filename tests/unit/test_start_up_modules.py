"""The modules on the start-up path, as docs/ARCHITECTURE.md lists them, import nothing heavy.

The start-up test (tests/integration/test_start_up_path.py) asks the first workers which
modules they loaded; this one reads the source, so it names the module and the line at
fault, and it keeps the list in docs/ARCHITECTURE.md ("Start-up order") complete: a
module the path imports at module level must be on it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.integration.test_start_up_path import HEAVY

ROOT = Path(__file__).resolve().parents[2]
# The modules that start a server, before the first fork (see docs/ARCHITECTURE.md).
ROOTS = {"sockactd.cli", "sockactd.config.load", "sockactd.master.run", "sockactd.worker.entry"}


def _listed() -> set[str]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    fence = r"<!-- start-up path: begin -->\n```text\n(.*?)```\n<!-- start-up path: end -->"
    block = re.search(fence, text, re.S)
    assert block, "docs/ARCHITECTURE.md has lost its start-up path list"
    return set(block.group(1).split())


LISTED = _listed()


def _path(module: str) -> Path:
    base = ROOT / module.replace(".", "/")
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _module_level_imports(module: str) -> list[tuple[int, str]]:
    """(line, imported name) for imports that run when `module` is imported."""
    found: list[tuple[int, str]] = []
    for node in ast.parse(_path(module).read_text()).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            continue
        for sub in [node, *(node.body if isinstance(node, ast.Try) else [])]:
            if isinstance(sub, ast.Import):
                found += [(sub.lineno, alias.name) for alias in sub.names]
            elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
                found.append((sub.lineno, sub.module))
                found += [(sub.lineno, f"{sub.module}.{alias.name}") for alias in sub.names]
    return found


def _is_module(name: str) -> bool:
    return _path(name).exists()


def test_the_list_holds_the_roots_and_only_modules_that_exist() -> None:
    assert ROOTS <= LISTED
    assert sorted(name for name in LISTED if not _is_module(name)) == []


@pytest.mark.parametrize("module", sorted(LISTED))
def test_a_module_on_the_path_imports_nothing_heavy_and_nothing_unlisted(module: str) -> None:
    imports = _module_level_imports(module)
    heavy = [(line, name) for line, name in imports if name.split(".")[0] in HEAVY]
    assert heavy == [], f"{module}: import these inside the function that needs them"
    ours = {name for _, name in imports if name.startswith("sockactd.") and _is_module(name)}
    assert sorted(ours - LISTED) == [], "on the start-up path: list it in docs/ARCHITECTURE.md"


def test_the_scan_sees_module_level_imports() -> None:
    # guards the test itself: the worker's request path is imported by entry.py
    names = {name for _, name in _module_level_imports("sockactd.worker.entry")}
    assert "sockactd.worker.serve" in names and "os" in names
    assert "typing" not in names  # entry.py's typing import is under TYPE_CHECKING


def _imports_symbol(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "sockactd.symbol":
            return True
        if isinstance(node, ast.Import) and any(a.name == "sockactd.symbol" for a in node.names):
            return True
    return False


def test_closed_sets_use_one_idiom_on_each_side() -> None:
    # Symbol on the start-up path (enum is heavy there), enum.Enum everywhere else
    users = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "sockactd").rglob("*.py")
        if _imports_symbol(path)
    }
    assert "sockactd.worker.connection" in users  # the scan sees them
    assert sorted(users - LISTED) == [], "off the start-up path, a closed set is an enum.Enum"
