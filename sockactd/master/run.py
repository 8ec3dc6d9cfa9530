"""Start the master: sockets, systemd conversation, app preloading, then the loop.

Called by cli.py after the configuration is valid. Errors raise SockactdError
subclasses after telling systemd why (STATUS= + ERRNO=); cli.py maps them to
exit codes.
"""

from __future__ import annotations

import logging
import os
import sys

from sockactd import log as sockactd_log
from sockactd.config.model import Config
from sockactd.errors import ActivationError, AppImportError, ExitCode
from sockactd.master.handover import take_handover
from sockactd.master.master import Master
from sockactd.osapi import RealKernel
from sockactd.sockets import open_listeners
from sockactd.systemd.activation import take_inherited_fds
from sockactd.systemd.notify import Notifier
from sockactd.worker.app import WSGIApp, load_app, prepare_process

__all__ = ["run"]

log = logging.getLogger(__name__)


def run(config: Config, argv: list[str] | None = None) -> ExitCode:
    sockactd_log.setup_logging(config.log_level, role="master")
    resumed = take_handover()
    notifier = Notifier.from_environ()
    try:
        listeners = open_listeners(config, take_inherited_fds())
    except ActivationError as exc:
        notifier.fatal(f"cannot start: {exc}", exc.errno)
        raise
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
    master = Master(
        config,
        listeners,
        notifier,
        app,
        RealKernel(),
        argv if argv is not None else sys.argv[1:],
        resumed,
        start_dir,
    )
    log.debug("master pid %d", os.getpid())
    return master.run()
