"""Every reload first loads the configuration again; this module decides what that changes.

Rule 1: whatever its mode, a reload starts by loading the configuration from the
        command line, environment and file the master was started with. A file
        that does not load aborts the reload with load.py's message (the one with
        "did you mean"); the running generation and its configuration stay.
Rule 2: each changed setting is handled as the settings table says
        (`Setting.applies`). WORKERS and MASTER settings are taken by a reload of
        any mode. A STANDARD setting is fixed in the master image: a workers or
        chain reload that finds one changed is refused -- not turned into a
        standard reload -- with a message naming the setting and the mode that
        applies it. A standard reload applies everything: its new image loads the
        file itself, so here the file is only validated.
Rule 3: the new values are in force from the moment the reload starts (the
        workers it forks take them); an aborted reload puts the old ones back, so
        the configuration in force is always the serving generation's.

Why refuse rather than escalate: the mode is the operator's choice of cost and
risk (a chain reload never runs two full generations; a standard one does, or
with drain-first leaves a gap), and trigger files and `systemctl reload` would
silently re-execute the master. A refusal changes nothing and says what to run.

This module never forks, signals or logs a request; the master's `use` callback
installs a Config.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sockactd.app import apply_env
from sockactd.config.load import load_config
from sockactd.config.model import Config
from sockactd.config.settings import SETTINGS, Applies, Setting
from sockactd.errors import ConfigError
from sockactd.log import get_logger
from sockactd.modes import ReloadMode

__all__ = ["Reconfigure", "apply_process_settings", "changed_settings", "refusal"]

log = get_logger(__name__)


def changed_settings(old: Config, new: Config) -> list[Setting]:
    """The settings whose value differs, in table order."""
    return [s for s in SETTINGS if getattr(old, s.attr) != getattr(new, s.attr)]


def refusal(changed: Sequence[Setting], mode: ReloadMode, control: str = "") -> str:
    """Why a `mode` reload cannot apply `changed`, or "" when it can.

    `control` is the server's control socket, so the command in the message is one
    an operator can paste (sockactctl's default path is not an instance's).
    """
    if mode is ReloadMode.STANDARD:
        return ""
    fixed = [s.name for s in changed if s.applies is Applies.STANDARD]
    if not fixed:
        return ""
    names = ", ".join(f"'{name}'" for name in fixed)
    where = f" --control-socket {control}" if control else ""
    return (
        f"the configuration changed {names}, which only a standard reload applies "
        f"(sockactctl{where} reload --mode standard --wait, or a restart); a {mode} reload "
        "does not, so nothing was changed"
    )


@dataclass
class Reconfigure:
    """Loads the configuration at the start of each reload and undoes it on abort."""

    argv: Sequence[str]
    environ: Mapping[str, str]
    start_dir: str  # relative paths in argv (--config) mean this directory, not chdir's
    use: Callable[[Config], None]  # installs a Config in the master (Master.use_config)
    _previous: Config | None = None

    def begin(self, current: Config, mode: ReloadMode, control: str = "") -> tuple[Config, str]:
        """Load and check; for a workers or chain reload, install the new configuration.

        Returns the configuration this reload runs with and "" -- or the current
        one and why the reload must not start.
        """
        here = os.getcwd()
        os.chdir(self.start_dir)
        try:
            new = load_config(self.argv, self.environ)
        except ConfigError as exc:
            return current, f"the configuration does not load: {exc}"
        finally:
            os.chdir(here)
        changed = changed_settings(current, new)
        problem = refusal(changed, mode, control)
        if problem or not changed:
            return current, problem
        log.info("configuration changed: %s", ", ".join(s.name for s in changed))
        if mode is not ReloadMode.STANDARD:
            self._previous = current
            self.use(new)
        return new, ""

    def finish(self, ok: bool) -> None:
        """The reload ended: keep what it installed, or put the old configuration back."""
        previous, self._previous = self._previous, None
        if previous is not None and not ok:
            log.info("configuration of the serving generation restored")
            self.use(previous)


def apply_process_settings(old: Config, new: Config, start_dir: str) -> None:
    """Change chdir, env and pythonpath in this process so the workers it forks see `new`.

    The master applied `old` with app.prepare_process at start-up; `home` is
    a STANDARD setting and never changes here. An env key that `new` no longer sets
    gets back the value the service started with (or is unset); a previous working
    directory stays on sys.path behind the new one.
    """
    os.chdir(start_dir)
    if new.chdir:
        os.chdir(new.chdir)
    cwd = os.getcwd()
    apply_env(new.env)
    drop = set(old.pythonpath) - set(new.pythonpath)
    sys.path[:] = [entry for entry in sys.path if entry not in drop]
    for directory in reversed(new.pythonpath):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    if "" not in sys.path and cwd not in sys.path:  # as prepare_process does
        sys.path.insert(0, cwd)
