"""py-autoreload, the master's side: watch the reported source files and the extra files.

Rule 1: as for trigger files (triggers/inotify.py), a file's DIRECTORY is watched
        and events are kept for the watched names only, so every way of saving is
        seen: a write, an editor's save by rename (IN_MOVED_TO), delete and
        re-create, touch. Swap and backup files are other names: not a change.
Rule 2: a directory listed in reload-extra-file counts every name in it and below,
        except what reload-ignore (and scan.DEFAULT_IGNORE) ignores.
Rule 3: a directory inotify cannot be trusted with (scan.inotify_unreliable), or
        cannot watch (the watch limit), or every one with reload-engine = poll, is
        scanned by stat every `interval` seconds instead; a watched directory that
        goes away is scanned from then on.
Rule 4: a burst of changes is one reload (triggers.base.Debouncer); `due` says so
        once, logging what changed. This module never starts a reload itself, and
        like the trigger watcher never blocks, sleeps or starts a thread.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from sockactd.autoreload import inotify
from sockactd.autoreload.scan import (
    Ignore,
    Snapshot,
    files_under,
    inotify_unreliable,
    mount_types,
    snapshot,
)
from sockactd.triggers.base import Debouncer
from sockactd.triggers.pyinotify_fd import Inotify

if TYPE_CHECKING:
    from sockactd.config.model import Config

__all__ = ["CodeWatcher", "open_code_watcher"]

log = logging.getLogger(__name__)

_KEY: Final = "code"  # the one Debouncer key
_TRACEBACK_FILE = re.compile(r'^\s*File "(/[^"]+)", line \d+', re.MULTILINE)


def open_code_watcher(config: Config) -> CodeWatcher | None:
    """The watcher py-autoreload asks for, or None when it is off (nothing imported then)."""
    if not config.autoreload_seconds:
        return None
    if config.autoreload_under_systemd and os.environ.get("INVOCATION_ID"):  # else refused
        log.warning(
            "py-autoreload is on under systemd (autoreload-under-systemd): a development "
            "tool, every saved file the workers imported reloads this site"
        )
    return CodeWatcher(
        config.autoreload_seconds,
        config.reload_extra_file,
        config.reload_ignore,
        config.reload_engine,
    )


class CodeWatcher:
    """The triggers.base.TriggerSource loop contract, plus `watch` for reported files."""

    def __init__(
        self,
        interval: float,
        extra: Iterable[str] = (),
        ignore: Iterable[str] = (),
        engine: str = "auto",
        quiet: float = 0.2,
    ) -> None:
        extra = list(extra)
        self.interval = interval
        self._ignore = Ignore(ignore)
        self._debouncer: Debouncer[str] = Debouncer(quiet=quiet)
        self._burst: list[str] = []
        self._names: dict[str, set[str]] = {}  # real directory -> watched names in it
        self._trees: set[str] = set()  # directories in which every name counts
        self._wds: dict[int, str] = {}
        self._polled: dict[str, Snapshot] = {}
        self._polled_trees: dict[str, dict[str, Snapshot]] = {}
        self._next_scan: float | None = None
        self._now = 0.0
        self._mounts = mount_types() if engine == "auto" else {}
        self._inotify = None if engine == "poll" else Inotify(self._on_event)
        for path in extra:
            if os.path.isdir(path):
                self._add_tree(os.path.realpath(path))
            else:
                self._add_file(path)
        log.info(
            "py-autoreload: watching the workers' modules%s (%s)",
            f" and {', '.join(extra)}" if extra else "",
            f"stat scan every {interval:g}s" if self._inotify is None else "inotify",
        )

    # --- the selector loop's interface -------------------------------------------------

    def fileno(self) -> int | None:
        """The inotify fd to select on; None with reload-engine = poll."""
        return None if self._inotify is None else self._inotify.fileno()

    def on_readable(self, now: float) -> None:
        self._now = now
        if self._inotify is not None:
            error = self._inotify.read()
            if error is not None:
                log.warning("py-autoreload: cannot read inotify events: %s", error)

    def due(self, now: float) -> bool:
        """True once when a burst of changes is over (the reason is logged)."""
        if self._next_scan is not None and now >= self._next_scan:
            self._now = now
            self._scan()
            self._next_scan = now + self.interval
        if not self._debouncer.due(now):
            return False
        changed = list(dict.fromkeys(self._burst))
        self._burst.clear()
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        log.info("py-autoreload: %s changed%s; reloading", ", ".join(changed[:3]), more)
        return True

    def next_deadline(self) -> float | None:
        deadlines = (self._debouncer.next_deadline(), self._next_scan)
        return min((d for d in deadlines if d is not None), default=None)

    def close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()

    # --- what to watch -----------------------------------------------------------------

    def watch(self, paths: Iterable[str]) -> None:
        """Watch these source files (a worker's M frame) unless ignored or watched already."""
        added = [
            path
            for path in paths
            if path.startswith("/") and not self._ignore(path) and self._add_file(path)
        ]
        if added:
            shown = ", ".join(added) if len(added) <= 5 else f"{len(added)} files"
            log.debug("py-autoreload: watching %s", shown)

    def watch_traceback(self, text: str) -> None:
        """Watch the files of a failed import's traceback: fixing any of them reloads."""
        self.watch(_TRACEBACK_FILE.findall(text))

    def _add_file(self, path: str) -> bool:
        """Watch `path` (through symlinks); False if it was watched already."""
        path = os.path.realpath(path)
        directory, name = os.path.split(path)
        if name in self._names.get(directory, ()) or path in self._polled:
            return False
        if self._watch_directory(directory):
            self._names.setdefault(directory, set()).add(name)
        else:
            self._poll(path)
        return True

    def _add_tree(self, directory: str) -> None:
        for root, dirs, _ in os.walk(directory):
            dirs[:] = [d for d in dirs if not self._ignore(os.path.join(root, d))]
            if not self._watch_directory(root):  # the whole tree is scanned instead
                files = files_under(directory, self._ignore)
                self._polled_trees[directory] = {path: snapshot(path) for path in files}
                self._schedule_scan()
                return
            self._trees.add(root)

    def _watch_directory(self, directory: str) -> bool:
        """Whether inotify watches `directory` now (False: scan what is in it)."""
        if self._inotify is None or inotify_unreliable(directory, self._mounts):
            return False
        if directory in self._names or directory in self._trees:
            return True
        error = self._inotify.add(directory, inotify.MASK)
        if isinstance(error, str):
            log.warning("py-autoreload: cannot watch %s (%s); scanning it", directory, error)
            return False
        self._wds[error] = directory
        return True

    def _poll(self, path: str) -> None:
        self._polled[path] = snapshot(path)
        self._schedule_scan()

    def _schedule_scan(self) -> None:
        if self._next_scan is None:
            self._next_scan = self._now + self.interval

    def _scan(self) -> None:
        for path, before in self._polled.items():
            if (now := snapshot(path)) != before:
                self._polled[path] = now
                self._changed(path)
        for directory, files in self._polled_trees.items():
            current = {path: snapshot(path) for path in files_under(directory, self._ignore)}
            for path in current.keys() | files.keys():
                if current.get(path) != files.get(path):
                    self._changed(path)
            self._polled_trees[directory] = current

    def _changed(self, path: str) -> None:
        self._burst.append(path)
        self._debouncer.note(_KEY, self._now)

    # --- inotify events ------------------------------------------------------------------

    def _on_event(self, wd: int, mask: int, name: str) -> None:
        if mask & inotify.OVERFLOW:
            self._changed("(inotify queue overflowed)")
            return
        directory = self._wds.get(wd)
        if directory is None:
            return
        if mask & inotify.GONE:  # deleted, moved away or unmounted: scan its files
            del self._wds[wd]
            if self._inotify is not None:
                self._inotify.remove(wd)
            self._trees.discard(directory)
            for lost in self._names.pop(directory, ()):
                self._poll(os.path.join(directory, lost))
            return
        path = os.path.join(directory, name)
        if directory in self._trees and not self._ignore(path):
            if mask & inotify.IS_DIRECTORY and mask & inotify.APPEARED:
                self._add_tree(path)
            self._changed(path)
        elif name in self._names.get(directory, ()):
            self._changed(path)
