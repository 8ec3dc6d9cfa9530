"""sockactctl: ask a running sockactd to reload, or show its status.

    sockactctl [--control-socket PATH] reload [--mode standard|workers|chain] [--wait] [--timeout S]
    sockactctl [--control-socket PATH] status [--json]
    sockactctl --version

When the server runs another sockactd version than this sockactctl, a line on
stderr says so (they still work together: control/protocol.py, Versions); when
their control protocols cannot work together, the server's refusal says that.

Exit codes (sockactd.errors.ExitCode): 0 done (or queued, without --wait);
1 no answer in time / connection lost (outcome unknown); 64 bad arguments;
65 the server answered with a failure (reload aborted, refused, bad request);
69 nothing answers on the control socket.

--timeout defaults to 300 s with --wait (a chain reload of many slow-importing
workers takes a while; 0 means wait forever) and to 10 s otherwise (the server
answers at once). The socket path comes from --control-socket, else
$SOCKACTD_CONTROL_SOCKET, else paths.default_control_socket() (systemd's
$RUNTIME_DIRECTORY); with none of them, exit 69 (CONTROL_UNREACHABLE) saying so.

`main` returns the exit code; the console script wrapper and `run()` exit with it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final, TextIO

from sockactd import __version__
from sockactd.control.client import request
from sockactd.control.paths import default_control_socket
from sockactd.control.protocol import (
    PROTOCOL_VERSION,
    Command,
    ControlRequest,
    Response,
)
from sockactd.errors import ControlError, ExitCode
from sockactd.modes import ReloadMode

__all__ = ["format_status", "main", "run", "version_note"]

WAIT_TIMEOUT: Final = 300.0
ANSWER_TIMEOUT: Final = 10.0
_MIB: Final = 1024 * 1024


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Control a running sockactd.")
    parser.add_argument(
        "--version",
        action="version",
        version=f"sockactctl {__version__} (control protocol {PROTOCOL_VERSION})",
    )
    parser.add_argument(
        "--control-socket",
        metavar="PATH",
        help="the server's control socket (default: $SOCKACTD_CONTROL_SOCKET, else "
        "$RUNTIME_DIRECTORY/control.sock under systemd)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    reload = commands.add_parser("reload", help="reload the application")
    reload.add_argument(
        "--mode", choices=ReloadMode.names(), help="default: the server's reload-mode"
    )
    reload.add_argument("--wait", action="store_true", help="return when the reload is done")
    reload.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help=f"seconds to wait for the answer; 0 = forever (default: {WAIT_TIMEOUT:g} with "
        f"--wait, else {ANSWER_TIMEOUT:g})",
    )
    status = commands.add_parser("status", help="show phase, generation and workers")
    status.add_argument("--json", action="store_true", help="print the raw status JSON")
    return parser


def _socket_path(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    if args.control_socket:
        return str(args.control_socket)
    return environ.get("SOCKACTD_CONTROL_SOCKET") or default_control_socket(environ)


def _timeout(args: argparse.Namespace) -> float | None:
    if args.command != "reload" or args.timeout is None:
        return WAIT_TIMEOUT if args.command == "reload" and args.wait else ANSWER_TIMEOUT
    return None if args.timeout == 0 else float(args.timeout)


def _request(args: argparse.Namespace, timeout: float | None) -> ControlRequest:
    if args.command == "status":
        return ControlRequest(Command.STATUS)
    mode = ReloadMode.parse(args.mode) if args.mode is not None else None  # argparse checked it
    return ControlRequest(Command.RELOAD, mode=mode, wait=args.wait, timeout=timeout)


def _duration(seconds: float) -> str:
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _worker_row(worker: Mapping[str, Any]) -> list[str]:
    rss = worker.get("rss_bytes")
    return [
        str(worker.get("pid", "?")),
        str(worker.get("generation", "?")),
        str(worker.get("state", "?")),
        str(worker.get("requests", "?")),
        "-" if rss is None else f"{rss / _MIB:.1f}",
        _duration(float(worker.get("uptime", 0.0))),
    ]


def format_status(data: Mapping[str, Any]) -> str:
    """Render a StatusData mapping as the human table of `sockactctl status`."""
    reload, last = data.get("reload"), data.get("last_reload")
    progress = (reload.get("progress") or reload.get("mode")) if reload else "none"
    lines = [
        f"phase        {data.get('phase', '?')}",
        f"generation   {data.get('generation', '?')}",
        f"master pid   {data.get('pid', '?')}",
        f"uptime       {_duration(float(data.get('uptime', 0.0)))}",
        f"reload       {progress}",
    ]
    if last:
        outcome = "ok" if last.get("ok") else "FAILED"
        lines.append(f"last reload  {outcome} (generation {last.get('generation')}): "
                     f"{last.get('message', '')}")  # fmt: skip
    rows = [["PID", "GEN", "STATE", "REQUESTS", "RSS MiB", "UPTIME"]]
    rows += [_worker_row(w) for w in data.get("workers", [])]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.append("")
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]  # fmt: skip
    return "\n".join(lines)


def version_note(response: Response) -> str | None:
    """A line saying the server runs another version than this client, or None."""
    if response.server == __version__:
        return None
    server = (
        f"sockactd {response.server} (control protocol {response.protocol})"
        if response.server is not None
        else "a sockactd older than control protocol versions"
    )
    return (
        f"note: versions differ: this sockactctl is {__version__} (control protocol "
        f"{PROTOCOL_VERSION}), the server runs {server}; a standard reload re-executes it "
        "from the files installed now"
    )


def _report(args: argparse.Namespace, ok: bool, message: str, data: Any, out: TextIO) -> int:
    if not ok:
        print(f"sockactctl: {args.command} failed: {message}", file=sys.stderr)
        return ExitCode.CONTROL_FAILED
    if args.command == "status":
        data = data or {}
        print(json.dumps(data, indent=2) if args.json else format_status(data), file=out)
    else:
        print(message, file=out)
    return ExitCode.OK


def main(argv: Sequence[str] | None = None, *, prog: str = "sockactctl") -> int:
    """Run sockactctl with `argv` (default sys.argv[1:]); return the exit code."""
    try:
        args = _parser(prog).parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2): argparse already printed
        return ExitCode.OK if exc.code in (0, None) else ExitCode.USAGE
    path = _socket_path(args, os.environ)
    if path is None:
        print(
            "sockactctl: which server? Give --control-socket PATH (or set "
            "SOCKACTD_CONTROL_SOCKET): outside systemd a server has a control socket only "
            "where its control-socket setting says",
            file=sys.stderr,
        )
        return ExitCode.CONTROL_UNREACHABLE
    timeout = _timeout(args)
    try:
        response = request(path, _request(args, timeout), timeout)
    except ControlError as exc:
        print(f"sockactctl: {exc}", file=sys.stderr)
        return exc.exit_code
    note = version_note(response)
    if note is not None:
        print(f"sockactctl: {note}", file=sys.stderr)
    return _report(args, response.ok, response.message, response.data, sys.stdout)


def run() -> None:
    """Entry point for `python -m sockactd.control.ctl`."""
    sys.exit(main())


if __name__ == "__main__":
    run()
