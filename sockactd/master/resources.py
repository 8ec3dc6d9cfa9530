"""Start-up resources, claimed before any listener is bound or any worker forked.

Rule 1: whatever would stop the master once it runs -- a control socket path
        another server answers on, or too long, or in an unsafe directory; a
        trigger file whose directory does not exist -- is found first. The
        server then exits 78 with one line saying what and where, having
        bound nothing and forked nothing (it used to bind the HTTP socket,
        fork workers, serve for a few seconds, then exit 5).
Rule 2: the control socket's path is resolved once, here, against the
        directory sockactd started in (before `chdir` applies); the master
        serves the fd bound here. Outside systemd there is none unless
        `control-socket` is set (control/paths.py says why).
On the cold-start path: no imports beyond what run.py already has.
"""

from __future__ import annotations

import os

from sockactd.control.bind import bind_control_socket
from sockactd.control.paths import default_control_socket
from sockactd.errors import ConfigError, ControlError
from sockactd.modes import ReloadMode

TYPE_CHECKING = False  # typing is not imported at run time: cold start
if TYPE_CHECKING:
    from collections.abc import Mapping

    from sockactd.config.model import Config

__all__ = ["check_trigger_dirs", "claim_control_socket", "control_socket_path"]


def control_socket_path(config: Config, environ: Mapping[str, str]) -> str | None:
    """The absolute control socket path this server uses, None when it has none."""
    path = config.control_socket or default_control_socket(environ)
    return os.path.abspath(path) if path else None


def claim_control_socket(path: str | None) -> int | None:
    """Bind `path` now (Rule 1); the listening fd, or None when there is no control socket."""
    if path is None:
        return None
    try:
        return bind_control_socket(path)
    except ControlError as exc:
        raise ConfigError("control-socket", str(exc)) from None


def check_trigger_dirs(config: Config) -> None:
    """Every trigger file's directory exists (the file itself may come later)."""
    base = os.path.abspath(config.chdir) if config.chdir else os.getcwd()  # as the master sees it
    for mode in ReloadMode.members():
        for path in config.trigger_files(mode):
            directory = os.path.dirname(os.path.join(base, path))
            if not os.path.isdir(directory):
                assert mode.trigger is not None  # it named this file
                raise ConfigError(mode.trigger, f"directory {directory} of {path} does not exist")
