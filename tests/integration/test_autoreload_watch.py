"""autoreload/watch.py with real files: what is a change, what is not, on both engines.

Driven as the master's loop drives it: select on fileno() (inotify) until
next_deadline(), on_readable() when readable, due() every turn.
"""

from __future__ import annotations

import logging
import selectors
import time
from pathlib import Path

import pytest

from sockactd.autoreload.watch import CodeWatcher

QUIET = 0.05


def reloads(watcher: CodeWatcher, seconds: float) -> int:
    """How many times due() said "reload" during `seconds` of the master's loop."""
    count = 0
    until = time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        fd = watcher.fileno()
        if fd is not None:
            selector.register(fd, selectors.EVENT_READ)
        while (now := time.monotonic()) < until:
            deadline = watcher.next_deadline()
            timeout = until - now if deadline is None else min(until, deadline) - now
            if fd is not None and selector.select(max(0.0, timeout)):
                watcher.on_readable(time.monotonic())
            elif fd is None:
                time.sleep(max(0.0, min(timeout, 0.01)))
            count += watcher.due(time.monotonic())
    return count


@pytest.fixture(params=["inotify", "poll"])
def engine(request: pytest.FixtureRequest) -> str:
    engine: str = request.param
    return engine


def test_module_files_and_only_them(tmp_path: Path, engine: str) -> None:
    module = tmp_path / "views.py"
    module.write_text("A = 1\n")
    (tmp_path / "other.py").write_text("")
    watcher = CodeWatcher(0.1, engine=engine, quiet=QUIET)
    try:
        watcher.watch([str(module), str(tmp_path / "__pycache__" / "views.cpython-311.pyc")])
        (tmp_path / "other.py").write_text("B = 1\n")  # not a module the workers use
        (tmp_path / ".views.py.swp").write_text("swap")
        assert reloads(watcher, 0.4) == 0
        module.write_text("A = 2\n")
        assert reloads(watcher, 0.6) == 1
    finally:
        watcher.close()


def test_a_burst_is_one_reload_and_a_rename_counts(tmp_path: Path, engine: str) -> None:
    module = tmp_path / "views.py"
    module.write_text("A = 0\n")
    watcher = CodeWatcher(0.1, engine=engine, quiet=0.3)
    try:
        watcher.watch([str(module)])
        for n in range(20):
            new = tmp_path / ".views.py.new"
            new.write_text(f"A = {n + 1}\n")
            new.replace(module)
        assert reloads(watcher, 1.0) == 1
    finally:
        watcher.close()


def test_an_extra_directory_counts_every_file_but_the_ignored(tmp_path: Path, engine: str) -> None:
    templates = tmp_path / "templates"
    (templates / "mail").mkdir(parents=True)
    (templates / "mail" / "welcome.txt").write_text("hi")
    watcher = CodeWatcher(0.1, [str(templates)], ["*.bak"], engine=engine, quiet=QUIET)
    try:
        (templates / "mail" / "welcome.txt.bak").write_text("old")
        (templates / ".page.html.swp").write_text("swap")
        assert reloads(watcher, 0.4) == 0
        (templates / "mail" / "welcome.txt").write_text("hello")
        assert reloads(watcher, 0.6) == 1
        (templates / "page.html").write_text("new file")
        assert reloads(watcher, 0.6) == 1
    finally:
        watcher.close()


def test_a_file_named_in_a_failed_import_is_watched(tmp_path: Path) -> None:
    helper = tmp_path / "helpers.py"
    helper.write_text("def broken(:\n")
    watcher = CodeWatcher(0.1, quiet=QUIET)
    try:
        watcher.watch_traceback(
            "Traceback (most recent call last):\n"
            f'  File "{tmp_path}/app.py", line 1, in <module>\n'
            f'  File "{helper}", line 1\n'
            "SyntaxError: invalid syntax\n"
        )
        helper.write_text("def fixed():\n    pass\n")
        assert reloads(watcher, 0.6) == 1
    finally:
        watcher.close()


def test_a_deleted_directory_is_a_change_and_pyinotify_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The kernel drops a deleted directory's watch itself; removing it again made
    # pyinotify log "rm_watch: cannot remove WD=1, Errno=Invalid argument" at ERROR,
    # twice: through the stderr handler pyinotify installs and through sockactd's.
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "page.html").write_text("hi")
    watcher = CodeWatcher(0.1, [str(templates)], engine="inotify", quiet=QUIET)
    try:
        (templates / "page.html").unlink()
        templates.rmdir()
        assert reloads(watcher, 0.6) == 1
    finally:
        watcher.close()
    assert [r.getMessage() for r in caplog.records if r.name == "pyinotify"] == []
    assert logging.getLogger("pyinotify").handlers == []
