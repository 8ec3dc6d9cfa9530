"""triggers/inotify.py with real files: every way of touching a trigger file fires once.

The test drives the watcher as the master's selector loop does: wait on fileno()
until next_deadline(), call on_readable() when readable, collect due().
"""

from __future__ import annotations

import logging
import os
import selectors
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sockactd.errors import ConfigError
from sockactd.modes import ReloadMode
from sockactd.triggers.base import TriggerSource
from sockactd.triggers.opener import open_trigger_watcher

QUIET = 0.05


def run_loop(watcher: TriggerSource, until: float) -> list[str]:
    """The master's loop in miniature: returns every mode (by name) due before `until`."""
    fired: list[str] = []
    with selectors.DefaultSelector() as selector:
        selector.register(watcher.fileno(), selectors.EVENT_READ)
        while (now := time.monotonic()) < until:
            deadline = watcher.next_deadline()
            timeout = until - now if deadline is None else min(until, deadline) - now
            if selector.select(max(0.0, timeout)):
                watcher.on_readable(time.monotonic())
            fired.extend(mode.value for mode in watcher.due(time.monotonic()))
    return fired


def wait_for_firing(watcher: TriggerSource, timeout: float = 5.0, settle: float = 0.3) -> list[str]:
    """Everything that fires until `settle` s after the first firing (or `timeout` s: none)."""
    fired: list[str] = []
    deadline = time.monotonic() + timeout
    while not fired and time.monotonic() < deadline:
        fired = run_loop(watcher, min(deadline, time.monotonic() + 0.05))
    if fired:
        fired += run_loop(watcher, time.monotonic() + settle)
    return fired


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[Callable[..., TriggerSource]]:
    watchers: list[TriggerSource] = []

    def make(*rules: tuple[Path, str]) -> TriggerSource:
        parsed = [(str(path), ReloadMode.parse(mode)) for path, mode in rules]
        watcher = open_trigger_watcher(parsed, QUIET)
        assert watcher is not None
        watchers.append(watcher)
        return watcher

    yield make
    for watcher in watchers:
        watcher.close()


def touch(path: Path) -> None:
    path.touch()
    os.utime(path)  # an existing file: only IN_ATTRIB


def write(path: Path) -> None:
    path.write_text("x")


def replace_atomically(path: Path) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.write_text("new")
    os.replace(tmp, path)


def delete(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    "change",
    [touch, write, replace_atomically, delete],
    ids=["touch", "write", "rename-over", "delete"],
)
def test_change_to_existing_file_fires_once(
    tmp_path: Path, watch: Callable[..., TriggerSource], change: Callable[[Path], None]
) -> None:
    trigger = tmp_path / "reload"
    trigger.write_text("")
    watcher = watch((trigger, "standard"))
    change(trigger)
    assert wait_for_firing(watcher) == ["standard"]


def test_file_that_does_not_exist_yet(tmp_path: Path, watch: Callable[..., TriggerSource]) -> None:
    trigger = tmp_path / "chain-reload"
    watcher = watch((trigger, "chain"))
    trigger.touch()
    assert wait_for_firing(watcher) == ["chain"]


def test_delete_then_recreate_fires_each_time(
    tmp_path: Path, watch: Callable[..., TriggerSource]
) -> None:
    trigger = tmp_path / "reload"
    trigger.touch()
    watcher = watch((trigger, "workers"))
    trigger.unlink()
    assert wait_for_firing(watcher) == ["workers"]
    trigger.touch()
    assert wait_for_firing(watcher) == ["workers"]


def test_unrelated_file_in_the_directory_is_ignored(
    tmp_path: Path, watch: Callable[..., TriggerSource]
) -> None:
    trigger = tmp_path / "reload"
    watcher = watch((trigger, "chain"))
    (tmp_path / "reload.bak").touch()
    (tmp_path / "other").write_text("x")
    os.replace(tmp_path / "other", tmp_path / "other2")
    assert wait_for_firing(watcher, timeout=10 * QUIET) == []
    trigger.touch()  # and the watcher is alive
    assert wait_for_firing(watcher) == ["chain"]


def test_burst_of_50_touches_is_one_reload(
    tmp_path: Path, watch: Callable[..., TriggerSource]
) -> None:
    trigger = tmp_path / "reload"
    trigger.touch()
    watcher = watch((trigger, "chain"))
    started = time.monotonic()
    for _ in range(50):
        os.utime(trigger)
    assert time.monotonic() - started < 1.0, "the burst itself was too slow to be one burst"
    assert wait_for_firing(watcher, settle=5 * QUIET) == ["chain"]


def test_two_modes_at_once(tmp_path: Path, watch: Callable[..., TriggerSource]) -> None:
    standard, chain = tmp_path / "reload", tmp_path / "chain-reload"
    watcher = watch((standard, "standard"), (chain, "chain"), (tmp_path / "idle", "workers"))
    standard.touch()
    chain.touch()
    assert sorted(wait_for_firing(watcher)) == ["chain", "standard"]


def test_one_file_two_modes(tmp_path: Path, watch: Callable[..., TriggerSource]) -> None:
    trigger = tmp_path / "reload"
    watcher = watch((trigger, "standard"), (trigger, "chain"), (trigger, "chain"))
    trigger.touch()
    assert sorted(wait_for_firing(watcher)) == ["chain", "standard"]


def test_files_in_two_directories(tmp_path: Path, watch: Callable[..., TriggerSource]) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    watcher = watch((tmp_path / "a" / "reload", "standard"), (tmp_path / "b" / "reload", "chain"))
    (tmp_path / "b" / "reload").touch()
    assert wait_for_firing(watcher) == ["chain"]


def test_missing_directory_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "reload"
    with pytest.raises(ConfigError) as caught:
        open_trigger_watcher(
            [(str(tmp_path / "ok"), ReloadMode.STANDARD), (str(missing), ReloadMode.CHAIN)]
        )
    assert caught.value.setting == "touch-chain-reload"
    assert str(missing.parent) in caught.value.message


@pytest.mark.parametrize("how", ["rmdir", "rename-away"])
def test_vanished_directory_is_survived_and_watched_again(
    tmp_path: Path,
    watch: Callable[..., TriggerSource],
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    directory = tmp_path / "triggers"
    directory.mkdir()
    trigger = directory / "reload"
    watcher = watch((trigger, "standard"))
    if how == "rmdir":
        directory.rmdir()
    else:
        directory.rename(tmp_path / "elsewhere")
        (tmp_path / "elsewhere" / "reload").touch()  # no longer our file: must not fire
    assert wait_for_firing(watcher, timeout=0.3) == []
    assert any(
        r.levelno == logging.WARNING and "vanished" in r.getMessage() for r in caplog.records
    )
    directory.mkdir()
    deadline = time.monotonic() + 5
    fired: list[str] = []
    while not fired and time.monotonic() < deadline:
        # the watch comes back after a retry; touch until it notices
        trigger.touch()
        os.utime(trigger)
        fired = wait_for_firing(watcher, timeout=0.3, settle=0)
    assert fired == ["standard"]


def test_inotify_fd_is_not_inherited(tmp_path: Path, watch: Callable[..., TriggerSource]) -> None:
    watcher = watch((tmp_path / "reload", "chain"))
    assert os.get_inheritable(watcher.fileno()) is False
    assert os.get_blocking(watcher.fileno()) is False
