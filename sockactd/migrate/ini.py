"""Read uWSGI configuration the way uWSGI 2.0 reads it, without running anything.

An ini file, by uWSGI's rules (core/ini.c, core/config.c; tests/unit/migrate
checks the reader against the real `uwsgi --get` where uWSGI is installed):

* Each line is stripped of spaces, tabs and CRs. `[name]` opens a section; a line
  starting with `;` or `#` is a comment (nowhere else: `a = b # c` keeps `# c`).
  Otherwise the key ends at the first `=` and the stripped rest is the value; a
  line without `=` is a key with an empty value.
* Only the asked section counts (`uwsgi`, or FILE:SECTION, or --section).
* Options keep their order, repeats included: an option given twice is a list.
* Magic variables are replaced as a file is read: %d its directory (trailing
  slash), %p its path, %s its name, %n that without extension, %e the extension,
  %c the directory's name, %x the section, %0..%9 the path's directories, %i its
  inode, %% a percent sign; upper-case letters give the same of the first file
  read. An unknown %X is dropped, as uWSGI drops it.
* `ini = FILE[:SECTION]` reads another file at that point, resolved against the
  including file's directory; `ini = :SECTION` reads a section of the file read
  last (not necessarily the current one, as in uWSGI).
* When every file is read, `%(name)` becomes the first value of option `name`
  (or of `set-placeholder = name=value`), recursively, with uWSGI's `%(a + 1)`
  arithmetic. A placeholder naming nothing stays, and is reported.
* `for = a b` ... `endfor` repeats its options with `%(_)` set; `for-times`,
  `if-opt` and `if-not-opt` are decided here too (they depend on the file only).
* What uWSGI expands only at run time, from the host it runs on, is kept as
  written and reported on its option, never guessed: `$(VAR)`, `@(file)`, %k
  (CPU count), %h (host name), %u/%U/%g/%G (user, group), %t/%T (time), %V, %v,
  %j/%J, %o/%O, and blocks under `if-env`, `if-exists`, `for-glob` and the like.
  So are `${VAR}` and `{{ var }}`, which uWSGI keeps as written: a template that
  was never filled in.

`--from-command` gives the same options from a uWSGI command line (an ExecStart=
value): `--key value`, `--key=value`, `--flag`, `-s X`, `--ini FILE[:SECTION]`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sockactd.errors import ExitCode, SockactdError

__all__ = ["IniError", "Option", "read_command", "read_ini"]

DEFAULT_SECTION: Final = "uwsgi"
_MAX_DEPTH: Final = 20
_RUNTIME_MAGIC: Final = {
    "k": "the CPU count",
    "h": "the host name",
    "u": "the user id",
    "U": "the user name",
    "g": "the group id",
    "G": "the group name",
    "t": "the start time",
    "T": "the start time",
    "v": "the vassals directory",
    "V": "the uWSGI version",
    "j": "a hash of the path",
    "J": "a hash of the path",
    "o": "the path as given to uwsgi",
    "O": "the path as given to uwsgi",
    "[": "an ANSI escape",
}
_BLOCK_ENDS: Final = frozenset({"end", "endfor", "endif", "end-if", "end-for"})
_BLOCK_STARTS: Final = frozenset({"for", "for-glob", "for-readline", "for-times", "ifdir", "ifenv",
                                  "ifexists", "ifplugin"})  # fmt: skip
_PLACEHOLDER: Final = re.compile(r"%\(([^)]*)\)")
_RUNTIME_REFERENCE: Final = re.compile(r"[$@]\([^)]*\)")
_TEMPLATE_LEFTOVER: Final = re.compile(r"\$\{[^}]*\}|\{\{.*?\}\}|\{%.*?%\}")
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


class IniError(SockactdError):
    """Not a uWSGI configuration this reader accepts; names the file and line."""

    exit_code = ExitCode.CONFIG_INVALID

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Option:
    """One option as uWSGI would see it, with where it was written."""

    key: str
    value: str
    where: str  # "shop.ini:12" or "command line, argument 3"
    runtime: tuple[str, ...] = ()  # what in `value` only uWSGI's run time could expand


def read_ini(path: Path, section: str = DEFAULT_SECTION) -> list[Option]:
    """The options of `section` in the ini file at `path`, includes and placeholders resolved."""
    reader = _Reader(path.resolve())  # uWSGI takes the real path: %d, %c follow links
    reader.read_file(path.resolve(), section, where=str(path), depth=0)
    return _resolve_placeholders(reader.options)


def read_command(command: str, is_flag: Callable[[str], bool], cwd: Path) -> list[Option]:
    """The options of a uWSGI command line (ExecStart= value); `is_flag` names valueless ones."""
    try:
        args = shlex.split(command)
    except ValueError as exc:
        raise IniError("--from-command", f"cannot split the command line: {exc}") from None
    if args and not args[0].startswith("-") and not args[0].endswith(".ini"):
        args = args[1:]  # the program: uwsgi, /usr/bin/uwsgi, uwsgi-core, ...
    reader: _Reader | None = None
    options: list[Option] = []
    position = 0
    while position < len(args):
        arg, position = args[position], position + 1
        where = f"command line, argument {position}"
        key, value = _split_argument(arg, where)
        if value is None and key not in ("", "ini") and is_flag(key):
            value = ""
        elif value is None and key != "":
            if position >= len(args):
                raise IniError(where, f"--{key} needs a value")
            value, position = args[position], position + 1
        if key in ("yaml", "yml", "xml", "xmlconfig", "json", "js"):
            raise IniError(where, f"--{key}: only ini configuration files are read")
        if key in ("", "ini"):  # `--ini FILE[:SECTION]`, or a lone FILE.ini
            file_part, section = _split_include(value or arg)
            path = (cwd / file_part).resolve()
            reader = reader or _Reader(path)
            reader.options = options
            reader.read_file(path, section or DEFAULT_SECTION, where=file_part, depth=0)
            continue
        options.append(Option(key, value or "", where, tuple(_runtime_references(value or ""))))
    return _resolve_placeholders(options)


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
    if arg.endswith((".xml", ".yaml", ".yml", ".json")):
        raise IniError(where, f"{arg}: only ini configuration files are read")
    raise IniError(where, f"unexpected argument {arg!r}")


def _split_include(value: str) -> tuple[str, str | None]:
    file_part, colon, section = value.rpartition(":")
    if not colon:
        return value, None
    return file_part, section or None


@dataclass
class _Block:
    """An open logic block: `for`/`if-*` ... `end*`."""

    key: str
    items: list[str] | None  # for: the values of %(_); if: [data] when passed, [] when not
    runtime: str | None = None  # when it depends on the host at run time: why


@dataclass
class _Reader:
    top: Path
    options: list[Option] = field(default_factory=list)
    _open: list[tuple[Path, str]] = field(default_factory=list)
    _last: Path | None = None  # `ini = :SECTION` reads the file read last, as uWSGI does

    def read_file(self, path: Path, section: str, where: str, depth: int) -> None:
        if depth > _MAX_DEPTH or (path, section) in self._open:
            raise IniError(where, f"include loop at {path}:{section}")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise IniError(where, f"cannot read {path}: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise IniError(f"{path}:{line}", "not UTF-8 text") from None
        self._open.append((path, section))
        self._last = path
        try:
            if not self._read_lines(path, section, text.split("\n")):
                raise IniError(where, f"no [{section}] section in {path}")
        finally:
            self._open.pop()

    def _read_lines(self, path: Path, section: str, lines: Sequence[str]) -> bool:
        current, found, block = "", False, None
        for number, line in enumerate(lines, start=1):
            where = f"{path}:{number}"
            stripped = line.strip(" \t\r")
            if not stripped or stripped[0] in ";#":
                continue
            if stripped[0] == "[":
                if not stripped.endswith("]") or len(stripped) < 2:
                    raise IniError(where, f"section header {stripped!r} does not end with ]")
                current = stripped[1:-1]
                continue
            if current != section:
                continue
            found = True
            key, _, value = stripped.partition("=")
            key = key.rstrip(" \t\r")
            if not key:
                raise IniError(where, f"a value without an option name: {stripped!r}")
            value, notes = self._magic(path, section, value.strip(" \t\r"))
            block = self._take(Option(key, value, where, tuple(notes)), path, block)
        return found

    def _take(self, option: Option, path: Path, block: _Block | None) -> _Block | None:
        """Add one option, honouring an open logic block; returns the block now open."""
        key = option.key
        if key in _BLOCK_ENDS:
            return None
        if key == "else" and block is not None:
            if block.runtime is None and block.key.startswith("if"):
                block.items = [] if block.items else [""]
            return block
        opens = key == "ini" or _starts_block(key)
        if opens and block is not None:
            raise IniError(option.where, f"{key} inside an open {block.key} block")
        if key == "ini":
            file_part, section = _split_include(option.value)
            target = self._last or path
            if file_part:
                target = (path.parent / file_part).resolve()
            self.read_file(target, section or DEFAULT_SECTION, option.where, len(self._open))
            return None
        if _starts_block(key):
            return self._open_block(option)
        if block is None:
            self.options.append(option)
        elif block.runtime is not None:
            self.options.append(_with_note(option, block.runtime))
        else:
            for item in block.items or []:
                value = option.value.replace("%(_)", item)
                self.options.append(Option(key, value, option.where, option.runtime))
        return block

    def _open_block(self, option: Option) -> _Block:
        key, data = option.key, option.value
        if key == "for":
            return _Block(key, data.split())
        if key == "for-times" and data.isdigit():
            return _Block(key, [str(n) for n in range(1, int(data) + 1)])
        if key in ("if-opt", "if-not-opt"):
            name, equals, wanted = data.partition("=")
            have = next((o.value for o in self.options if o.key == name), None)
            passed = have is not None and (not equals or have == wanted)
            if key == "if-not-opt":
                passed = have is None or (bool(equals) and have != wanted)
            return _Block(key, [have or ""] if passed else [])
        return _Block(key, None, runtime=f"inside `{key} = {data}`, decided by uWSGI at run time")

    def _magic(self, path: Path, section: str, value: str) -> tuple[str, list[str]]:
        if "%" not in value:
            return value, _runtime_references(value)
        out: list[str] = []
        notes: list[str] = []
        position = 0
        while position < len(value):
            char = value[position]
            following = value[position + 1 : position + 2]
            if char != "%" or following == "(":
                out.append(char)
                position += 1
                continue
            position += 2
            if following == "%":
                out.append("%")
            elif following in _RUNTIME_MAGIC:
                out.append("%" + following)
                notes.append(f"%{following} ({_RUNTIME_MAGIC[following]})")
            else:
                top = following.isupper()
                source = self.top if top else path
                out.append(_magic_value(source, following.lower(), section, top))
        text = "".join(out)
        return text, notes + _runtime_references(text)


def _starts_block(key: str) -> bool:
    return key in _BLOCK_STARTS or key.startswith("if-")


def _magic_value(path: Path, letter: str, section: str, top: bool) -> str:
    if letter.isdigit():
        parts = path.parent.parts[1:]
        return parts[int(letter)] if int(letter) < len(parts) else ""
    name = path.name
    values = {
        "d": str(path.parent).rstrip("/") + "/",
        "p": str(path),
        "s": name,
        "n": name.rsplit(".", 1)[0] if "." in name else name,
        "e": name.rsplit(".", 1)[1] if "." in name else "",
        "c": path.parent.name,
        "x": DEFAULT_SECTION if top else section,
        "i": str(path.stat().st_ino) if path.exists() else "",
    }
    return values.get(letter, "")  # uWSGI drops an unknown magic variable


def _runtime_references(value: str) -> list[str]:
    notes = [f"{ref} (expanded by uWSGI at run time)" for ref in _RUNTIME_REFERENCE.findall(value)]
    notes += [f"{ref} (not uWSGI syntax: a template left unfilled?)"
              for ref in _TEMPLATE_LEFTOVER.findall(value)]  # fmt: skip
    return notes


def _with_note(option: Option, note: str) -> Option:
    return Option(option.key, option.value, option.where, (*option.runtime, note))


def _resolve_placeholders(options: list[Option]) -> list[Option]:
    named: list[tuple[str, Option]] = []
    declared = {
        o.value.partition("=")[0].strip() for o in options if o.key.startswith("declare-option")
    }
    for option in options:
        if option.key in ("set-placeholder", "set-ph"):
            name, _, value = option.value.partition("=")
            named.append((name, Option(name, value, option.where, option.runtime)))
        else:
            named.append((option.key, option))
    cache: dict[int, Option] = {}

    def resolve(option: Option, stack: tuple[int, ...] = ()) -> Option:
        if id(option) in cache:
            return cache[id(option)]
        if id(option) in stack:
            return _with_note(option, "placeholders refer to each other in a loop")
        notes = list(option.runtime)

        def substitute(match: re.Match[str]) -> str:
            expression = match.group(1)
            if " " in expression:
                return _arithmetic(expression, lambda n: _value_of(n, named, resolve, stack))
            found = next((o for key, o in named if key == expression), None)
            if found is None:
                why = "is set when uWSGI runs" if expression in declared else "names no option"
                notes.append(f"%({expression}) {why}")
                return match.group(0)
            resolved = resolve(found, (*stack, id(option)))
            notes.extend(n for n in resolved.runtime if n not in notes)
            return resolved.value

        value = _PLACEHOLDER.sub(substitute, option.value)
        result = Option(option.key, value, option.where, tuple(notes))
        cache[id(option)] = result
        return result

    return [resolve(option) for option in options]


def _value_of(
    name: str,
    named: list[tuple[str, Option]],
    resolve: Callable[[Option, tuple[int, ...]], Option],
    stack: tuple[int, ...],
) -> str:
    found = next((o for key, o in named if key == name), None)
    return "" if found is None else resolve(found, stack).value


def _arithmetic(expression: str, lookup: Callable[[str], str]) -> str:
    """uWSGI's `%(a b + 1)`: tokens concatenate, `+ - * /` apply to the next, `++`/`--`."""
    current: str | None = None
    operator = ""
    for token in expression.split():
        if token in ("+", "-", "*", "/"):
            operator = token
            continue
        if token in ("++", "--"):
            if current is not None:
                current = str(_to_int(current) + (1 if token == "++" else -1))
            operator = ""
            continue
        value = token if token.lstrip("-").isdigit() else lookup(token)
        left, right = _to_int(current or ""), _to_int(value)
        if operator == "+":
            current = str(left + right)
        elif operator == "-":
            current = str(left - right)
        elif operator == "*":
            current = str(left * right)
        elif operator == "/":
            current = str(int(left / right) if right else 0)
        else:
            current = (current or "") + value
        operator = ""
    return current or ""


def _to_int(text: str) -> int:
    match = re.match(r"\s*[-+]?\d+", text)
    return int(match.group(0)) if match else 0
