"""Trigger files watched in the master with inotify (pyinotify's fd-level API, pyinotify_fd.py).

Rule 1: watch each trigger file's DIRECTORY, not the file, so every way of
        "touching" it is seen: touch (IN_ATTRIB), a write (IN_CLOSE_WRITE), an
        atomic replace by rename (IN_MOVED_TO), delete (IN_DELETE / IN_MOVED_FROM),
        (re-)creation (IN_CREATE) -- including a file that does not exist yet.
        Events for other names in the directory are ignored.
Rule 2: the master's selector owns the loop: this module reads the inotify fd
        when told it is readable and never blocks, sleeps or starts a thread
        (no pyinotify loop(), ThreadedNotifier or asyncore).
Rule 3: a burst of events becomes one reload per mode (triggers.base.Debouncer).
Rule 4: a watched directory that vanishes is logged and retried every
        RETRY_SECONDS; serving goes on. A directory missing at start is a ConfigError.
Rule 5: a trigger path is followed as the user wrote it, through symlinks
        (triggers/paths.py): the directory of the file it reaches is watched, and so
        is the directory of every symlink on the way. A change to one of those
        symlinks (a deploy's `mv -T current.new current`) is a change of the trigger
        file, and the paths are resolved again: the watches move to where they lead now.

This module, and with it pyinotify, is imported only when trigger files are set (opener.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Final

from sockactd.errors import ConfigError
from sockactd.modes import ReloadMode
from sockactd.triggers.base import Debouncer, Rule
from sockactd.triggers.paths import resolve
from sockactd.triggers.pyinotify_fd import Inotify, pyinotify

__all__ = ["TriggerWatcher"]

log = logging.getLogger(__name__)

RETRY_SECONDS: Final = 1.0
CHANGE_MASK: Final[int] = (
    pyinotify.IN_ATTRIB
    | pyinotify.IN_CLOSE_WRITE
    | pyinotify.IN_MOVED_TO
    | pyinotify.IN_MOVED_FROM
    | pyinotify.IN_CREATE
    | pyinotify.IN_DELETE
)
DIR_GONE_MASK: Final[int] = pyinotify.IN_DELETE_SELF | pyinotify.IN_MOVE_SELF | pyinotify.IN_UNMOUNT
WATCH_MASK: Final[int] = CHANGE_MASK | DIR_GONE_MASK | pyinotify.IN_ONLYDIR


class TriggerWatcher:
    """Watches (file, mode) rules; see triggers.base.TriggerSource for the loop contract."""

    def __init__(self, rules: Sequence[Rule], quiet: float = 0.2) -> None:
        """Raises ConfigError (naming the touch-* setting) when a directory cannot be watched."""
        self._rules = list(rules)
        try:
            self._names, self._links, self._settings = _resolve_all(self._rules)
        except OSError as exc:
            raise ConfigError(_setting(rules[0][1]), str(exc)) from None
        self._follow_again = False
        self._modes = list(dict.fromkeys(mode for _, mode in rules))
        self._debouncer: Debouncer[ReloadMode] = Debouncer(quiet=quiet)
        self._wds: dict[int, str] = {}  # watch descriptor -> directory
        self._lost: set[str] = set()
        self._retry_at: float | None = None
        self._now = 0.0
        self._inotify = Inotify(self._on_event)
        try:
            for directory in self._names:
                self._watch_at_start(directory)
        except BaseException:
            self.close()
            raise

    # --- the selector loop's interface -------------------------------------------------

    def fileno(self) -> int:
        return self._inotify.fileno()

    def on_readable(self, now: float) -> None:
        self._now = now
        error = self._inotify.read()
        if error is not None:
            log.warning("cannot read trigger file events: %s", error)
            return
        if self._follow_again:  # after processing: no watch changes under pyinotify's feet
            self._follow_again = False
            self._follow()

    def due(self, now: float) -> list[ReloadMode]:
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_lost(now)
        return self._debouncer.due(now)

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self._debouncer.next_deadline(), self._retry_at) if d is not None]
        return min(deadlines, default=None)

    def close(self) -> None:
        self._inotify.close()

    # --- watches -----------------------------------------------------------------------

    def _watch_at_start(self, directory: str) -> None:
        if not os.path.isdir(directory):
            raise ConfigError(
                self._settings[directory],
                f"directory {directory} of a trigger file does not exist "
                "(create it; the file itself may be missing)",
            )
        error = self._add_watch(directory)
        if error is not None:
            raise ConfigError(self._settings[directory], f"cannot watch {directory}: {error}")

    def _add_watch(self, directory: str) -> str | None:
        """Watch `directory`; returns None, or why it failed."""
        added = self._inotify.add(directory, WATCH_MASK)
        if isinstance(added, str):
            return added
        self._wds[added] = directory
        return None

    def _retry_lost(self, now: float) -> None:
        self._follow()  # a symlink on the way may have changed while a directory was gone
        for directory in sorted(self._lost):
            if os.path.isdir(directory) and self._add_watch(directory) is None:
                self._lost.discard(directory)
                log.info("trigger directory %s is back; watching it again", directory)
        self._retry_at = now + RETRY_SECONDS if self._lost else None

    def _follow(self) -> None:
        """Resolve every trigger path again; move the watches to the directories it gives."""
        try:
            names, links, settings = _resolve_all(self._rules)
        except OSError as exc:
            log.warning("cannot follow the trigger paths (%s); watching where they led", exc)
            return
        before = set(self._names)
        self._names, self._links, self._settings = names, links, settings
        for directory in sorted(set(names) - before):
            if not os.path.isdir(directory) or self._add_watch(directory) is not None:
                self._lost.add(directory)
                self._retry_at = self._retry_at or self._now + RETRY_SECONDS
                log.warning("trigger directory %s does not exist (still serving)", directory)
        for directory in before - set(names):
            self._lost.discard(directory)
            for wd in [wd for wd, watched in self._wds.items() if watched == directory]:
                del self._wds[wd]
                self._inotify.remove(wd)
        if before != set(names):
            log.info("trigger paths now lead to %s", ", ".join(sorted(names)))

    def _on_directory_gone(self, wd: int, mask: int, directory: str) -> None:
        self._wds.pop(wd, None)
        if mask & pyinotify.IN_MOVE_SELF:
            # Moved away, still watched by the kernel: stop following it. (After a
            # delete or unmount the kernel drops the watch itself and sends IN_IGNORED.)
            self._inotify.remove(wd)
        self._lost.add(directory)
        self._retry_at = self._now + RETRY_SECONDS
        log.warning(
            "trigger directory %s vanished; its trigger files are not watched until it is "
            "back (still serving)",
            directory,
        )

    # --- events ------------------------------------------------------------------------

    def _on_event(self, wd: int, mask: int, name: str) -> None:
        if mask & pyinotify.IN_Q_OVERFLOW:
            log.warning("inotify queue overflowed; treating every trigger file as changed")
            for configured in self._modes:
                self._debouncer.note(configured, self._now)
            return
        directory = self._wds.get(wd)
        if directory is None:
            return  # a watch already dropped (IN_IGNORED after removal)
        if mask & DIR_GONE_MASK:
            self._on_directory_gone(wd, mask, directory)
            return
        if mask & pyinotify.IN_IGNORED:
            self._wds.pop(wd, None)
            return
        for mode in self._names.get(directory, {}).get(name, []):
            self._debouncer.note(mode, self._now)
        if (directory, name) in self._links:
            self._follow_again = True


def _setting(mode: ReloadMode) -> str:
    """The setting that names `mode`'s trigger files, for error messages."""
    return mode.trigger or "reload-mode"  # a rule's mode has a trigger setting


def _resolve_all(
    rules: Sequence[Rule],
) -> tuple[dict[str, dict[str, list[ReloadMode]]], set[tuple[str, str]], dict[str, str]]:
    """({directory: {name: [modes]}}, symlinks on the way, {directory: setting to name}).

    A name is the file a rule's path reaches, or a symlink the path passes through;
    directories are real (symlink-free) paths. The first rule naming a directory
    decides which setting an error message about it names.
    """
    names: dict[str, dict[str, list[ReloadMode]]] = {}
    links: set[tuple[str, str]] = set()
    settings: dict[str, str] = {}
    for path, mode in rules:
        resolved = resolve(path)
        for directory, name in (resolved.target, *resolved.links):
            modes = names.setdefault(directory, {}).setdefault(name, [])
            if mode not in modes:
                modes.append(mode)
            settings.setdefault(directory, _setting(mode))
        links.update(resolved.links)
    return names, links, settings
