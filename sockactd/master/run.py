"""Start the master: sockets, systemd conversation, app preloading, then the loop.

Called by cli.py after the configuration is valid. Errors raise SockactdError
subclasses after telling systemd why (STATUS= + ERRNO=); cli.py maps them to
exit codes.

Cold start is on the clock: under socket activation a client is waiting for
its first response while we start. So the first workers are forked as soon as
the sockets and the app are ready, and only then does the master import its
own machinery (the loop, reloads, the control socket, triggers) -- while the
workers already serve that first request.
"""

from __future__ import annotations

import os
import sys

from sockactd import log as sockactd_log
from sockactd.app import load_app, prepare_process
from sockactd.errors import ActivationError, AppImportError, ConfigError
from sockactd.master.endpoints import (
    close_monitor_sockets,
    open_monitor_sockets,
    split_inherited,
    wanted,
)
from sockactd.master.resources import check_trigger_dirs, claim_control_socket, control_socket_path
from sockactd.osapi import MASTER_SIGNALS, RealKernel, csignal
from sockactd.sockets import open_listeners
from sockactd.systemd.activation import HANDOVER_ENV, take_inherited_fds
from sockactd.systemd.notify import Notifier
from sockactd.worker.board import Board
from sockactd.worker.entry import fork_worker

TYPE_CHECKING = False  # typing is not imported at run time: cold start
if TYPE_CHECKING:
    from sockactd.app import WSGIApp
    from sockactd.config.model import Config
    from sockactd.master.endpoints import MonitorSocket

__all__ = ["run"]

log = sockactd_log.get_logger(__name__)


def run(config: Config, argv: list[str] | None = None) -> int:
    sockactd_log.setup_logging(config.log_level, role="master")
    resuming = HANDOVER_ENV in os.environ  # handover.py reads it after the first fork
    notifier = Notifier.from_environ()
    app_fds, monitor_fds = split_inherited(take_inherited_fds())
    control_path = control_socket_path(config, os.environ)
    control_fd = None
    monitors: list[MonitorSocket] = []
    try:
        # Everything that can fail is claimed before the app's sockets are bound.
        check_trigger_dirs(config)
        if not resuming:  # after a standard reload the control socket comes with the handover
            control_fd = claim_control_socket(control_path)
        if wanted(config, monitor_fds):
            monitors = open_monitor_sockets(config, monitor_fds)
        listeners = open_listeners(config, app_fds)
    except (ActivationError, ConfigError) as exc:
        notifier.fatal(f"cannot start: {exc}", getattr(exc, "errno", 22))
        if control_fd is not None and control_path is not None:
            os.close(control_fd)
            os.unlink(control_path)
        close_monitor_sockets(monitors, unlink=True)
        raise
    Board.counting = bool(monitors)  # the workers keep the counters the monitors show
    Board.describing = bool(config.harakiri)  # ... and what they serve, for harakiri's log
    # A standard reload re-runs our argv; relative paths in it mean the directory we started in.
    start_dir = os.getcwd()
    prepare_process(config)
    app: WSGIApp | None = None
    if not config.lazy_apps:
        try:
            app = load_app(config)
        except AppImportError as exc:
            notifier.fatal(f"cannot start: {exc}", 22)
            raise
    # From the first fork until the loop's handlers exist (Master.__init__), our signals
    # wait rather than kill the master by their default action. Before it, with no worker
    # yet, the defaults are right: Ctrl-C can still interrupt an app import that hangs.
    csignal.pthread_sigmask(csignal.SIG_BLOCK, MASTER_SIGNALS)
    kernel = RealKernel()
    first_workers = []
    if not resuming:  # after a standard reload the old workers serve while the new ones boot
        first_workers = [
            fork_worker(kernel.fork, config, listeners, app, 1, notifier.close_in_child)
            for _ in range(config.processes)
        ]
    _raise_fd_limit()  # after the fork: `resource` is not free to import (osapi.py)
    from sockactd.master.handover import take_handover
    from sockactd.master.master import Master

    master = Master(
        config,
        listeners,
        notifier,
        app,
        kernel,
        argv if argv is not None else sys.argv[1:],
        take_handover(),
        start_dir,
        first_workers,
        monitors,
        (control_path, control_fd),
    )
    log.debug("master pid %d", os.getpid())
    return master.run()


def _raise_fd_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard one, for the master and every later worker."""
    from sockactd.osapi import raise_fd_limit

    try:
        before, after = raise_fd_limit()
    except OSError as exc:
        log.warning("cannot raise the open-file limit: %s", exc)
        return
    if after != before:
        log.info("raised the open-file limit from %d to %d", before, after)
