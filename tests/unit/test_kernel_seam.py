"""Only osapi.py forks, execs, spawns, signals other processes and reaps (issue 15 item 4).

The master and the reload strategies get those calls from a `Kernel` so the unit tests'
fake kernel can stand in; a module reaching for `os.fork` itself would slip past it.
This test reads every module of sockactd/ with `ast` and fails on a use -- a call, or
the function passed on as a value (`fork_worker(os.fork, ...)`) -- of a process call
below, or an import of a module that starts processes, anywhere but in osapi.py.

Not counted, on purpose: a process acting on itself without another process involved
(`os._exit`, `signal.alarm`, `signal.pthread_sigmask`, installing handlers).
ALLOWED lists a justified exception with its reason; it may only shrink.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sockactd"
SEAM = PACKAGE / "osapi.py"

FORBIDDEN: dict[str, frozenset[str]] = {
    "os": frozenset({
        "fork", "forkpty", "kill", "killpg", "pidfd_open", "system", "popen",
        "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
        "posix_spawn", "posix_spawnp", "spawnl", "spawnle", "spawnlp", "spawnlpe",
        "spawnv", "spawnve", "spawnvp", "spawnvpe",
        "wait", "wait3", "wait4", "waitid", "waitpid",
    }),
    "signal": frozenset({"pthread_kill", "pidfd_send_signal", "raise_signal"}),
}  # fmt: skip
PROCESS_MODULES = frozenset({"subprocess", "multiprocessing", "pty", "concurrent.futures"})
# The C module under signal.py, and osapi's name for it, are the signal module too.
SAME_AS = {"_signal": "signal", "sockactd.osapi.csignal": "signal"}

# (module, what it uses) -> why it may. Empty today; a row needs a reason a reviewer accepts.
ALLOWED: dict[tuple[str, str], str] = {}


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"


def _run_time_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, leaving out the bodies of `if TYPE_CHECKING:` (they never run)."""
    for child in ast.iter_child_nodes(tree):
        if _is_type_checking(child):
            assert isinstance(child, ast.If)
            for statement in child.orelse:
                yield statement
                yield from _run_time_nodes(statement)
            continue
        yield child
        yield from _run_time_nodes(child)


def uses(source: str) -> list[str]:
    """The process calls and process modules `source` uses, as `os.fork`, `subprocess`."""
    nodes = list(_run_time_nodes(ast.parse(source)))
    aliases: dict[str, str] = {}  # local name -> "os" / "signal"
    found: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(tuple(PROCESS_MODULES)):
                    found.append(alias.name)
                    continue
                bound = alias.asname or alias.name.split(".")[0]  # `import os.path` binds os
                module = SAME_AS.get(alias.name, alias.name if alias.asname else bound)
                if module in FORBIDDEN:
                    aliases[bound] = module
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            module = SAME_AS.get(node.module, node.module)
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if node.module.startswith(tuple(PROCESS_MODULES)) or full in PROCESS_MODULES:
                    found.append(full)
                elif full in SAME_AS:
                    aliases[alias.asname or alias.name] = SAME_AS[full]
                elif alias.name in FORBIDDEN.get(module, ()):
                    found.append(f"{module}.{alias.name}")
    for node in nodes:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = aliases.get(node.value.id)
            if module is not None and node.attr in FORBIDDEN[module]:
                found.append(f"{module}.{node.attr}")
    return found


def _modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts): path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != SEAM
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os\nfork_worker(os.fork, config)", ["os.fork"]),
        ("import os\nos.kill(os.getpid(), 15)", ["os.kill"]),
        ("import os as o\no.execve(a, b, c)", ["os.execve"]),
        ("import os.path\nos.waitpid(1, 0)", ["os.waitpid"]),
        ("from os import pidfd_open\npidfd_open(1)", ["os.pidfd_open"]),
        ("import subprocess\nsubprocess.Popen(['true'])", ["subprocess"]),
        ("from subprocess import Popen", ["subprocess.Popen"]),
        ("def f():\n    import multiprocessing", ["multiprocessing"]),
        ("import _signal as csignal\ncsignal.pthread_kill(1, 15)", ["signal.pthread_kill"]),
        ("from sockactd.osapi import csignal\ncsignal.raise_signal(15)", ["signal.raise_signal"]),
        ("import signal\nsignal.pidfd_send_signal(3, 15)", ["signal.pidfd_send_signal"]),
        ("TYPE_CHECKING = False\nif TYPE_CHECKING:\n    import subprocess", []),
        ("import os\nos._exit(0)\nos.getpid()\nos.pipe2(0)", []),
        (
            "from sockactd.osapi import csignal\ncsignal.alarm(5)\ncsignal.pthread_sigmask(0, ())",
            [],
        ),
    ],
)
def test_the_scan_finds_process_calls(source: str, expected: list[str]) -> None:
    assert uses(source) == expected


def test_the_scan_sees_the_seam_itself() -> None:
    # guards the test: osapi.py, the one module allowed, uses what the others may not
    found = set(uses(SEAM.read_text()))
    assert {"os.fork", "os.kill", "os.execve", "os.pidfd_open", "os.waitpid"} <= found
    assert "subprocess" in found


def test_only_the_kernel_seam_starts_signals_and_reaps_processes() -> None:
    found = {(module, use) for module, path in _modules().items() for use in uses(path.read_text())}
    assert sorted(found - ALLOWED.keys()) == [], "go through sockactd/osapi.py (Kernel)"
    assert sorted(ALLOWED.keys() - found) == [], "no longer used: take the row off ALLOWED"
