"""Where the control socket lives by default, and making its directory safe to use.

Default, first match wins (the server and sockactctl compute the same answer
from the same environment):

1. ``$RUNTIME_DIRECTORY/control.sock`` -- systemd's RuntimeDirectory= (first
   entry when several are configured, colon-separated);
2. ``/run/sockactd/control.sock`` when running as root;
3. ``$XDG_RUNTIME_DIR/sockactd/control.sock``;
4. ``/tmp/sockactd-<uid>/control.sock``.

This module never binds or connects; server.py does.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

from sockactd.errors import ControlError

__all__ = ["SOCKET_NAME", "default_control_socket", "ensure_private_parent"]

SOCKET_NAME = "control.sock"


def default_control_socket(environ: Mapping[str, str] = os.environ, euid: int | None = None) -> str:
    """The control socket path for this environment (see the module docstring)."""
    uid = os.geteuid() if euid is None else euid
    runtime = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return os.path.join(runtime, SOCKET_NAME)
    if uid == 0:
        return os.path.join("/run/sockactd", SOCKET_NAME)
    xdg = environ.get("XDG_RUNTIME_DIR", "")
    if xdg:
        return os.path.join(xdg, "sockactd", SOCKET_NAME)
    return os.path.join(f"/tmp/sockactd-{uid}", SOCKET_NAME)


def ensure_private_parent(path: str) -> None:
    """Create the socket's directory (mode 0700) when missing, and check it when present.

    An existing directory must belong to us or to root and must not be writable by
    group or others: in a shared place like /tmp another user could otherwise swap
    the socket file under us. Raises ControlError explaining what is wrong.
    """
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ControlError(
            f"cannot create control socket directory {parent}: {exc.strerror}"
        ) from None
    st = os.stat(parent)
    if not stat.S_ISDIR(st.st_mode):
        raise ControlError(f"control socket directory {parent} is not a directory")
    if st.st_uid not in (0, os.geteuid()):
        raise ControlError(
            f"control socket directory {parent} belongs to uid {st.st_uid}, not to us "
            f"(uid {os.geteuid()}) or root"
        )
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise ControlError(
            f"control socket directory {parent} is writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o})"
        )
