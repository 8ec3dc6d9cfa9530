"""The `sockactd` command: choose an action, run it, turn the outcome into an exit status.

    sockactd ctl ...             the control command (same as sockactctl)
    sockactd migrate-uwsgi ...   convert a uWSGI ini file (sockactd/migrate/)
    sockactd --help | --version
    sockactd --check [settings]  validate, import the app here, exit 0 / 70 / 78
    sockactd [settings]          serve until stopped

This is the only module that calls sys.exit. Every expected failure arrives as
a SockactdError and leaves as one line on stderr plus its ExitCode; anything
else is a bug and keeps its traceback. Configuration errors are reported before
anything is bound or forked. Imports of the master, the worker and the control
client happen only on the path that needs them, to keep `--check`, `--help`
and `ctl` quick to start.
"""

from __future__ import annotations

import gc
import os
import sys

from sockactd.errors import AppImportError, ExitCode, SockactdError

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

    from sockactd.config.model import Config

__all__ = ["main"]

PROG = "sockactd"


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of `sockactd` and `python -m sockactd`; never returns."""
    args = list(sys.argv[1:] if argv is None else argv)
    sys.exit(int(_run(args)))


def _run(args: list[str]) -> int:
    if args[:1] == ["ctl"]:
        from sockactd.control.ctl import main as ctl_main

        return int(ctl_main(args[1:], prog=f"{PROG} ctl"))
    try:
        if args[:1] == ["migrate-uwsgi"]:
            from sockactd.migrate.command import main as migrate_main

            return migrate_main(args[1:])
        return _dispatch(args)
    except SockactdError as exc:
        _report(exc)
        return int(exc.exit_code)
    finally:
        gc.enable()  # _dispatch pauses the collector; an error may leave it paused


def _dispatch(args: list[str]) -> int:
    if args == ["--version"]:
        return _print_version()  # before the parser is even imported: packaging scripts call it
    # Our start-up imports allocate thousands of objects and no garbage: the collector's
    # passes over them are pure cost on the cold-start clock. It is back on before the
    # application is imported (its import may well leave cycles to collect).
    gc.disable()
    from sockactd.config.load import config_from, help_text, read_command_line

    command_line = read_command_line(args)
    if command_line.show_help:
        sys.stdout.write(help_text())
        return ExitCode.OK
    if command_line.show_version:
        return _print_version()
    config = config_from(command_line, os.environ)
    if command_line.check:
        gc.enable()
        from sockactd.log import setup_logging

        setup_logging(config.log_level, role="check")
        return _check(config)
    from sockactd.master.run import run  # sets up its own logging

    gc.enable()
    # argv goes along so a standard reload can re-execute and --check the same command line
    return int(run(config, args))


def _print_version() -> int:
    from sockactd import __version__

    print(f"{PROG} {__version__}")
    return ExitCode.OK


def _check(config: Config) -> int:
    from sockactd.app import load_app, prepare_process

    # The same chdir/env/pythonpath the master applies before it imports the app
    prepare_process(config)
    load_app(config)
    print(f"configuration OK, application {config.app_target} imports")
    return ExitCode.OK


def _report(exc: SockactdError) -> None:
    # One line a journal reader can act on; the traceback of an app import follows it.
    message = " ".join(str(exc).split("\n")).strip() or type(exc).__name__
    print(f"{PROG}: error: {message}", file=sys.stderr)
    if isinstance(exc, AppImportError) and exc.details:
        print(exc.details.rstrip("\n"), file=sys.stderr)
