"""Opening the trigger watcher: the one place that picks the inotify implementation.

Apart from triggers/base.py (the interface and the debouncer) so that base.py never
imports inotify.py, which builds on base.py's tables; pyinotify is imported only when
there are trigger files.
"""

from __future__ import annotations

from collections.abc import Sequence

from sockactd.triggers.base import Rule, TriggerSource

__all__ = ["open_trigger_watcher"]


def open_trigger_watcher(rules: Sequence[Rule], quiet: float = 0.2) -> TriggerSource | None:
    """An inotify watcher for `rules`, or None without rules (pyinotify is then never imported).

    Raises errors.ConfigError naming the setting when a trigger file's directory is missing.
    """
    if not rules:
        return None
    from sockactd.triggers.inotify import TriggerWatcher

    return TriggerWatcher(rules, quiet)
