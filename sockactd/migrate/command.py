"""`sockactd migrate-uwsgi FILE.ini [--section S] [--name APP] [--out DIR] [--from-command CMD]`.

Reads the uWSGI configuration, converts it and either prints the files (each
under a `# --- /etc/...` line) and the report, or writes the files under DIR as
they go on the target system (DIR/etc/sockactd/APP.toml, DIR/etc/systemd/system/
sockactd@APP.{socket,service}.d/uwsgi.conf) plus DIR/migrate-uwsgi-report.txt,
and prints the report. Existing files are never overwritten.

Exit status: 0 every option mapped or explained; 1 something was not mapped (the
report names it); 78 the input is not a uWSGI configuration this reads (file and
line on stderr); 73 an output file exists already.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from sockactd.errors import ExitCode
from sockactd.migrate import render
from sockactd.migrate.cmdline import read_command
from sockactd.migrate.convert import Note, convert
from sockactd.migrate.debian import debian_site
from sockactd.migrate.ini import read_ini
from sockactd.migrate.option import DEFAULT_SECTION
from sockactd.migrate.rules import is_flag

__all__ = ["main"]

# The instance runs as user sockactd-NAME (units/sockactd@.service): a user name has at most
# 31 characters and no "." or ":" (packaging/libexec/prepare-instance refuses the rest).
_INSTANCE = re.compile(r"^[A-Za-z0-9_-]{1,22}$")


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Convert a uWSGI ini file into a sockactd instance: "
        "/etc/sockactd/APP.toml, socket and service drop-ins, and a report.",
        epilog="Exit status: 0 all mapped or explained, 1 something not mapped, "
        "78 not a uWSGI ini file, 73 an output file exists.",
    )
    parser.add_argument("file", nargs="?", metavar="FILE.ini", help="the uWSGI ini file")
    parser.add_argument("--section", default=None, help=f"ini section (default {DEFAULT_SECTION})")
    parser.add_argument("--name", help="instance name APP (default: the file's name)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write the files under DIR")
    parser.add_argument(
        "--inherit",
        metavar="FILE",
        help="read FILE's [uwsgi] first, as `uwsgi --ini FILE --ini FILE.ini` does (default for "
        "a file in /etc/uwsgi/apps-*: Debian's inherited config, as its init script; none: no)",
    )
    parser.add_argument(
        "--from-command",
        metavar="CMD",
        help="read a uWSGI command line instead (an ExecStart= value)",
    )
    return parser


def main(argv: Sequence[str], prog: str = "sockactd migrate-uwsgi") -> int:
    """Run the subcommand; returns the exit status (IniError propagates: 78)."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if (args.file is None) == (args.from_command is None):
        parser.error("give FILE.ini or --from-command (one of them)")
    debian = None
    if args.file is not None:
        path = Path(args.file)
        file_part, colon, section = args.file.rpartition(":")
        if colon and not path.exists() and file_part:
            path = Path(file_part)  # FILE.ini:SECTION, as uWSGI takes it
        section = args.section or (section if colon and file_part else DEFAULT_SECTION)
        debian = debian_site(path) if args.inherit is None else None
        if debian is not None:
            options = read_ini(path, section, inherit=debian.inherited, preset=debian.preset)
        else:
            inherit = None if args.inherit in (None, "none") else Path(args.inherit)
            options = read_ini(path, section, inherit=inherit)
        source = f"{args.file} [{section}]" if args.section else args.file
        name = args.name or path.name.rsplit(".", 1)[0]
    else:
        options = read_command(args.from_command, is_flag, Path.cwd())
        source = "the uWSGI command line"
        name = args.name
        if name is None:
            parser.error("--from-command needs --name APP")
    if not _INSTANCE.match(name):
        parser.error(
            f"instance name {name!r}: at most 22 letters, digits, _ and - (it runs as user "
            "sockactd-NAME); choose one with --name"
        )
    migration = convert(options, name)
    if debian is not None:
        migration.notes.insert(0, Note("Debian", debian.describe()))
    outputs = render.files(migration, source)
    text = render.report(migration, source)
    if args.out is None:
        for relative, content in outputs.items():
            sys.stdout.write(f"# --- /{relative}\n{content}\n")
        sys.stdout.write(text)
    else:
        status = _write(args.out, outputs, text)
        if status:
            return status
        sys.stdout.write(text)
        review = "review what was NOT MAPPED, then " if migration.unmapped else ""
        enable = " ".join(render.units_to_enable(migration))
        sys.stdout.write(f"\nwritten under {args.out}; {review}install with: "
                         f"cp -r {args.out}/etc / && systemctl daemon-reload && "
                         f"systemctl enable --now {enable}\n")  # fmt: skip
    return ExitCode.FAILURE if migration.unmapped else ExitCode.OK


def _write(out: Path, outputs: Mapping[PurePosixPath, str], text: str) -> int:
    targets = {out / str(relative): content for relative, content in outputs.items()}
    targets[out / "migrate-uwsgi-report.txt"] = text
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        print(f"sockactd migrate-uwsgi: error: would overwrite {', '.join(existing)}",
              file=sys.stderr)  # fmt: skip
        return ExitCode.CANT_CREATE
    for path, content in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return ExitCode.OK
