"""The import graph of sockactd/, computed from the source: no cycle, no arrow upwards.

The layer order is read from docs/ARCHITECTURE.md ("Layers"), the one place it is
written. A unit is a subpackage (`master`, `worker`, ...) or a top-level module
(`errors`, `app`, ...). An arrow is any `import` of a sockactd module anywhere in a
file (inside functions too: a lazy import is still an arrow); imports under
`if TYPE_CHECKING:` count for the layers but not for cycles, as they never run.

KNOWN lists the arrows that break a rule today. It can only shrink: the test fails
when a new arrow breaks a rule, and also when a listed arrow no longer does (it was
removed or its cycle broken), until it is taken off the list.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sockactd"

Arrow = tuple[str, str]

# Arrows that break a rule today (issue 15 items 1 and 3): remove a row when its arrow goes.
KNOWN: frozenset[Arrow] = frozenset({
})  # fmt: skip


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The module an imported name lives in (`sockactd.app.load_app` -> `sockactd.app`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parent, *([node.module] if node.module else [])])
        return [f"{base}.{alias.name}" for alias in node.names]
    return []


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"


def _imports(node: ast.AST, package: str, typing_only: bool) -> Iterator[tuple[str, bool]]:
    """(imported name, only under TYPE_CHECKING) for every import below `node`."""
    for child in ast.iter_child_nodes(node):
        for name in _imported_names(child, package):
            yield name, typing_only
        if _is_type_checking(child):
            assert isinstance(child, ast.If)
            for statement in child.body:
                yield from _imports(ast.Module([statement], []), package, True)
            for statement in child.orelse:
                yield from _imports(ast.Module([statement], []), package, typing_only)
        else:
            yield from _imports(child, package, typing_only)


def _graph() -> dict[Arrow, bool]:
    """(importer, imported) -> True if every such import is under TYPE_CHECKING."""
    arrows: dict[Arrow, bool] = {}
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for name, typing_only in _imports(ast.parse(path.read_text()), package, False):
            target = _resolve(name) if name.startswith("sockactd") else None
            if target is not None and target != module:
                arrows[module, target] = arrows.get((module, target), True) and typing_only
    return arrows


GRAPH = _graph()


def _layers() -> dict[str, int]:
    """Unit -> its line in the "Layers" block of docs/ARCHITECTURE.md (0 is the bottom)."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    fence = r"<!-- layers: begin -->\n```text\n(.*?)```\n<!-- layers: end -->"
    block = re.search(fence, text, re.S)
    assert block, "docs/ARCHITECTURE.md has lost its Layers block"
    lines = [line.split("#")[0].split() for line in block.group(1).splitlines()]
    return {unit: level for level, units in enumerate(lines) for unit in units}


LAYERS = _layers()


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "sockactd"


def _against_layers() -> set[Arrow]:
    return {
        (a, b) for a, b in GRAPH if _unit(a) != _unit(b) and LAYERS[_unit(b)] >= LAYERS[_unit(a)]
    }


def _in_cycles(graph: dict[Arrow, bool] = GRAPH) -> set[Arrow]:
    """Run-time arrows inside a strongly connected component (Tarjan, iteratively)."""
    edges: dict[str, list[str]] = {}
    for (a, b), typing_only in sorted(graph.items()):
        if not typing_only:
            edges.setdefault(a, []).append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    component: dict[str, int] = {}
    for root in sorted({module for arrow in graph for module in arrow}):
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    while True:
                        member = stack.pop()
                        component[member] = index[node]
                        if member == node:
                            break
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                work.append((child, iter(edges.get(child, ()))))
            elif child not in component:
                low[node] = min(low[node], index[child])
    return {(a, b) for a, targets in edges.items() for b in targets if component[a] == component[b]}


def test_the_scan_sees_the_imports() -> None:
    # guards the test itself: a parser that found nothing would pass every check below
    assert ("sockactd.worker.serve", "sockactd.protocols.wsgi") in GRAPH
    assert GRAPH["sockactd.cli", "sockactd.master.run"] is False  # a lazy import counts
    assert ("sockactd.app", "sockactd.config.model") in GRAPH  # so does a typing-only one
    # and the cycle finder finds one (the source has none left): a <-> b, and c -> a outside it;
    # a typing-only arrow back (d) closes no cycle
    made_up = {("a", "b"): False, ("b", "a"): False, ("c", "a"): False,
               ("a", "d"): False, ("d", "a"): True}  # fmt: skip
    assert _in_cycles(made_up) == {("a", "b"), ("b", "a")}


def test_every_unit_has_a_layer() -> None:
    assert sorted({_unit(module) for module in MODULES} - LAYERS.keys()) == []


def test_no_new_cycle_or_upward_arrow_and_the_known_list_only_shrinks() -> None:
    breaking = _against_layers() | _in_cycles()
    assert sorted(breaking - KNOWN) == [], "new: break the cycle or import downwards"
    assert sorted(KNOWN - breaking) == [], "fixed: take these rows off KNOWN"
