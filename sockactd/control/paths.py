"""Where the control socket lives by default, and making its directory safe to use.

Under systemd the default is ``$RUNTIME_DIRECTORY/control.sock`` -- the unit's
RuntimeDirectory= (first entry when several are configured, colon-separated),
one per instance (sockactd@.service: ``/run/sockactd/%i``). Outside systemd
there is no default: a server started by hand has a control socket only when
its ``control-socket`` setting names one, so any number of them can run side
by side without colliding on a shared path, and sockactctl is pointed at the
same path (``--control-socket`` or ``$SOCKACTD_CONTROL_SOCKET``). Signals
(SIGHUP, SIGUSR1, SIGUSR2) still reload such a server.

This module never binds or connects; bind.py and server.py do.
"""

from __future__ import annotations

import os
import stat

from sockactd.errors import ControlError

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SOCKET_NAME", "default_control_socket", "ensure_private_parent"]

SOCKET_NAME = "control.sock"


def default_control_socket(environ: Mapping[str, str] = os.environ) -> str | None:
    """The control socket path for this environment, None outside systemd (see above)."""
    runtime = environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return os.path.join(runtime, SOCKET_NAME) if runtime else None


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
