"""The settings table's `applies` column matches where the code reads each setting.

A reload of any mode loads the configuration again; master/reconfig.py refuses a
workers or chain reload that changed a STANDARD setting and installs the others.
That is only right if the column tells the truth, so this test reads the source:

* a setting read by code that runs once per master image (binding sockets, the
  control socket, trigger watches, start-up) is STANDARD -- unless the master
  applies it again on a reload (Master.use_config, apply_process_settings);
* every STANDARD setting is read by such code (else refusing a reload for it
  would be needless);
* a MASTER setting is read by the master's code (master/ or reload/), a WORKERS
  one by a worker's (or applied again for the workers by apply_process_settings).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from sockactd.config.model import Config
from sockactd.config.settings import SETTINGS, Applies, Setting, by_name
from sockactd.modes import ReloadMode

PACKAGE = Path(__file__).resolve().parents[3] / "sockactd"
FIELDS = frozenset(Config.fields())

# (module, function) pairs that run once per master image; "*" means every function.
ONCE_PER_IMAGE = {
    ("sockets.py", "*"),
    ("triggers/base.py", "rules_from_config"),
    ("control/paths.py", "*"),
    ("master/run.py", "run"),
    ("master/resources.py", "*"),
    ("master/master.py", "Master._open_control"),
    ("master/master.py", "Master._open_triggers"),
    ("app.py", "prepare_process"),
    ("master/endpoints.py", "*"),
    ("master/master.py", "Master._open_autoreload"),
    ("autoreload/watch.py", "open_code_watcher"),
}
APPLIED_AGAIN = {
    ("master/master.py", "Master.use_config"),
    ("master/reconfig.py", "apply_process_settings"),
}


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    yield f"{node.name}.{item.name}", item


# Config properties and methods, and the fields they read
DERIVED = {
    "autoreload_seconds": {"py_autoreload", "reload"},
    # every reload mode's trigger setting (sockactd/modes.py), read through the mode table
    "trigger_files": {by_name(m.trigger).attr for m in ReloadMode.members() if m.trigger},
}


def _config_reads(node: ast.AST) -> set[str]:
    """Fields read as `config.X`, `self.config.X` or `spec.config.X` (and old/new.X)."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and (sub.attr in FIELDS or sub.attr in DERIVED):
            owner = sub.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name in ("config", "old", "new", "current"):
                found |= DERIVED.get(sub.attr, {sub.attr})
    return found


def _reads() -> dict[tuple[str, str], set[str]]:
    reads = {}
    for path in PACKAGE.rglob("*.py"):
        module = path.relative_to(PACKAGE).as_posix()
        for name, node in _functions(ast.parse(path.read_text())):
            reads[module, name] = _config_reads(node)
    return reads


READS = _reads()


def _read_in(pairs: set[tuple[str, str]]) -> set[str]:
    found: set[str] = set()
    for (module, function), attrs in READS.items():
        if (module, function) in pairs or (module, "*") in pairs:
            found |= attrs
    return found


def test_the_scan_sees_the_readers() -> None:
    # guards the test itself: renamed functions must not make every check pass vacuously
    for pair in ONCE_PER_IMAGE | APPLIED_AGAIN:
        module, function = pair
        assert any(m == module and (function == "*" or f == function) for m, f in READS), pair
    assert {"http_socket", "control_socket", "touch_reload", "home"} <= _read_in(ONCE_PER_IMAGE)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_applies_matches_the_readers(setting: Setting) -> None:
    once = setting.attr in _read_in(ONCE_PER_IMAGE)
    again = setting.attr in _read_in(APPLIED_AGAIN)
    if setting.applies is Applies.STANDARD:
        assert once and not again, "STANDARD but not fixed at start-up: any reload could apply it"
        return
    assert not once or again, "read once per master image: mark it Applies.STANDARD"
    readers = {module for (module, _), attrs in READS.items() if setting.attr in attrs}
    if setting.applies is Applies.MASTER:
        # reload/ is the master's too: reload/registry.py builds a mode's strategy from config
        master_side = ("master/", "reload/")
        assert any(m.startswith(master_side) and m != "master/run.py" for m in readers), readers
    else:
        worker_side = any(m.startswith(("worker/", "protocols/", "app.py")) for m in readers)
        assert worker_side or again, readers
