"""A uWSGI command line (an ExecStart= value) read into the same Options as an ini file.

`--key value`, `--key=value`, `--flag` (which keys take no value: the caller's
`is_flag`), short options `-s X`/`-sX`, and `--ini FILE[:SECTION]`, `--json FILE`
or a lone FILE.ini, read at that point by ini.py's reader. YAML and XML files are
refused (exit 78). Magic variables are not expanded on a command line, as in
uWSGI; placeholders are.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Final

from sockactd.migrate.ini import IniReader, split_include
from sockactd.migrate.option import DEFAULT_SECTION, IniError, Option, runtime_references
from sockactd.migrate.placeholders import resolve_placeholders

__all__ = ["read_command"]

_SHORT_OPTIONS: Final = {
    "s": "socket",
    "p": "processes",
    "w": "module",
    "H": "home",
    "b": "buffer-size",
    "R": "max-requests",
    "t": "harakiri",
    "l": "listen",
    "z": "socket-timeout",
    "d": "daemonize",
    "M": "master",
    "T": "enable-threads",
    "L": "disable-logging",
    "i": "single-interpreter",
}
_SHORT_FLAGS: Final = frozenset("MTLi")


def read_command(command: str, is_flag: Callable[[str], bool], cwd: Path) -> list[Option]:
    """The options of a uWSGI command line (ExecStart= value); `is_flag` names valueless ones."""
    try:
        args = shlex.split(command)
    except ValueError as exc:
        raise IniError("--from-command", f"cannot split the command line: {exc}") from None
    if args and not args[0].startswith("-") and not args[0].endswith(".ini"):
        args = args[1:]  # the program: uwsgi, /usr/bin/uwsgi, uwsgi-core, ...
    reader: IniReader | None = None
    options: list[Option] = []
    position = 0
    while position < len(args):
        arg, position = args[position], position + 1
        where = f"command line, argument {position}"
        key, value = _split_argument(arg, where)
        if value is None and key not in ("", "ini", "json", "js") and is_flag(key):
            value = ""
        elif value is None and key != "":
            if position >= len(args):
                raise IniError(where, f"--{key} needs a value")
            value, position = args[position], position + 1
        if key in ("yaml", "yml", "xml", "xmlconfig"):
            raise IniError(where, f"--{key}: only ini configuration files are read")
        if key in ("", "ini", "json", "js"):  # `--ini FILE[:SECTION]`, or a lone FILE.ini
            file_part, section = split_include(value or arg)
            path = (cwd / file_part).resolve()
            reader = reader or IniReader(path)
            reader.options = options
            json = key in ("json", "js") or (key == "" and ".json" in file_part)
            reader.read_file(path, section or DEFAULT_SECTION, file_part, depth=0, json=json)
            continue
        options.append(Option(key, value or "", where, tuple(runtime_references(value or ""))))
    return resolve_placeholders(options)


def _split_argument(arg: str, where: str) -> tuple[str, str | None]:
    if arg.startswith("--"):
        key, equals, value = arg[2:].partition("=")
        return key, value if equals else None
    if arg.startswith("-") and len(arg) >= 2:
        long = _SHORT_OPTIONS.get(arg[1])
        if long is None:
            raise IniError(where, f"unknown short option {arg[:2]} (use its --long form)")
        if arg[1] in _SHORT_FLAGS:
            return long, ""
        return long, arg[2:] or None
    if arg.endswith(".ini") or ".ini:" in arg:
        return "", arg
    if arg.endswith(".json") or ".json:" in arg:
        return "", arg
    if arg.endswith((".xml", ".yaml", ".yml")):
        raise IniError(where, f"{arg}: only ini configuration files are read")
    raise IniError(where, f"unexpected argument {arg!r}")
