"""Trigger files reached through symlinks (issue 12 item 7): followed as the user wrote them.

Three layouts, as uWSGI handles them: the trigger file is a symlink, a directory on
its path is a symlink, and the deploy layout `current -> releases/N` swapped with
`mv -T`. After the swap the new release's file is the trigger and the old one's no
longer is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sockactd.triggers.base import TriggerSource
from tests.integration.test_reload_modes import answers, deploy, start_site
from tests.integration.test_triggers_inotify import touch, wait_for_firing, watch
from tests.support import wait_until

__all__ = ["watch"]  # the fixture, used by name

Watch = Callable[..., TriggerSource]


def swap(link: Path, target: str) -> None:
    """What deploy tools do: ln -s TARGET link.new && mv -T link.new link."""
    new = link.with_name(link.name + ".new")
    new.symlink_to(target)
    os.rename(new, link)


def test_a_symlinked_trigger_file(tmp_path: Path, watch: Watch) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "real.txt").touch()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "reload.txt").symlink_to("../shared/real.txt")
    watcher = watch((tmp_path / "app" / "reload.txt", "chain"))
    touch(tmp_path / "app" / "reload.txt")  # touch follows the link: the target changes
    assert wait_for_firing(watcher) == ["chain"]


def test_a_symlinked_directory(tmp_path: Path, watch: Watch) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "reload.txt").touch()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    watcher = watch((tmp_path / "link" / "reload.txt", "workers"))
    touch(tmp_path / "link" / "reload.txt")
    assert wait_for_firing(watcher) == ["workers"]


def test_current_swapped_to_a_new_release(tmp_path: Path, watch: Watch) -> None:
    for release in ("1", "2"):
        (tmp_path / "releases" / release).mkdir(parents=True)
        (tmp_path / "releases" / release / "reload.txt").touch()
    current = tmp_path / "current"
    current.symlink_to("releases/1")
    watcher = watch((current / "reload.txt", "chain"))
    touch(current / "reload.txt")
    assert wait_for_firing(watcher) == ["chain"]
    swap(current, "releases/2")  # the path now reaches another file: that is a change too
    assert wait_for_firing(watcher) == ["chain"]
    touch(current / "reload.txt")  # the new release's file
    assert wait_for_firing(watcher) == ["chain"]
    touch(tmp_path / "releases" / "1" / "reload.txt")  # the old one is no trigger any more
    assert wait_for_firing(watcher, timeout=0.5) == []


def test_the_server_reloads_through_a_swapped_current(tmp_path: Path) -> None:
    """End to end: touch-chain-reload = current/reload.txt, a deploy swaps `current`."""
    for release in ("1", "2"):
        (tmp_path / "releases" / release).mkdir(parents=True)
        (tmp_path / "releases" / release / "reload.txt").touch()
    current = tmp_path / "current"
    current.symlink_to("releases/1")
    srv, port, site = start_site(tmp_path, "--touch-chain-reload", str(current / "reload.txt"))
    try:
        deploy(site, version="v2")
        swap(current, "releases/2")
        touch(current / "reload.txt")
        wait_until(lambda: {v for _, v in answers(port, 4)} == {"v2"}, 20, "the new code")
        assert "chain reload started" in srv.log()
    finally:
        srv.stop()
