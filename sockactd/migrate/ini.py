"""Read uWSGI configuration the way uWSGI 2.0 reads it, without running anything.

An ini file, by uWSGI's rules (core/ini.c, core/config.c; tests/unit/migrate
checks the reader against the real `uwsgi --get` where uWSGI is installed):

* Each line is stripped of spaces, tabs and CRs. `[name]` opens a section; a line
  starting with `;` or `#` is a comment (nowhere else: `a = b # c` keeps `# c`).
  Otherwise the key ends at the first `=` and the stripped rest is the value; a
  line without `=` is a key with an empty value.
* Only the asked section counts (`uwsgi`, or FILE:SECTION, or --section).
* Options keep their order, repeats included: an option given twice is a list.
* A `.json` file is uWSGI's JSON form, `{"uwsgi": {"key": value or [values]}}`
  (true is 1, false and null 0), with the same magic variables and placeholders.
* Magic variables are replaced as a file is read: %d its directory (trailing
  slash), %p its path, %s its name, %n that without extension, %e the extension,
  %c the directory's name, %x the section, %0..%9 the path's directories, %i its
  inode, %% a percent sign; upper-case letters give the same of the first file
  read. An unknown %X is dropped, as uWSGI drops it.
* `ini = FILE[:SECTION]` (`json = FILE` for JSON) reads another file at that
  point, resolved against the including file's directory; `ini = :SECTION` reads
  a section of the file read last (not necessarily the current one, as in uWSGI).
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

Placeholders are resolved by placeholders.py; cmdline.py reads a command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sockactd.migrate.option import DEFAULT_SECTION, IniError, Option, runtime_references, with_note
from sockactd.migrate.placeholders import resolve_placeholders

__all__ = ["IniReader", "read_ini", "split_include"]

_MAX_DEPTH: Final = 20
_INCLUDES: Final = frozenset({"ini", "json", "js"})  # the format is the option's, not the name's
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


def read_ini(
    path: Path,
    section: str = DEFAULT_SECTION,
    *,
    inherit: Path | None = None,
    preset: Sequence[Option] = (),
) -> list[Option]:
    """The options of `section` in the ini file at `path`, includes and placeholders resolved.

    `inherit`: a file whose [uwsgi] options come first, as `uwsgi --ini INHERIT --ini
    PATH` reads them; `preset`: options set before both (uWSGI's UWSGI_* environment).
    """
    reader = IniReader(path.resolve())  # uWSGI takes the real path: %d, %c follow links
    reader.options = list(preset)
    if inherit is not None:
        reader.read_file(inherit.resolve(), DEFAULT_SECTION, where=str(inherit), depth=0)
        reader.top = path.resolve()
    json = path.suffix in (".json", ".js")  # as uWSGI takes a bare FILE.json argument
    reader.read_file(path.resolve(), section, where=str(path), depth=0, json=json)
    return resolve_placeholders(reader.options)


def split_include(value: str) -> tuple[str, str | None]:
    """`FILE:SECTION` -> (FILE, SECTION); `FILE` -> (FILE, None); `:SECTION` -> ("", SECTION)."""
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
class IniReader:
    """Reads ini files into `options` (one reader per configuration: it knows the first file)."""

    top: Path
    options: list[Option] = field(default_factory=list)
    _open: list[tuple[Path, str]] = field(default_factory=list)
    _last: Path | None = None  # `ini = :SECTION` reads the file read last, as uWSGI does

    def read_file(
        self, path: Path, section: str, where: str, depth: int, json: bool = False
    ) -> None:
        """Add the options of `section` of the file at `path` (ini, or uWSGI's JSON form)."""
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
        read = self._read_json if json else self._read_lines
        try:
            if not read(path, section, text):
                raise IniError(where, f"no [{section}] section in {path}")
        finally:
            self._open.pop()

    def _read_lines(self, path: Path, section: str, text: str) -> bool:
        current, found, block = "", False, None
        for number, line in enumerate(text.split("\n"), start=1):
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

    def _read_json(self, path: Path, section: str, text: str) -> bool:
        """uWSGI's JSON form: {"SECTION": {"key": value or [values]}}; true is 1, null 0."""
        import json  # only for a JSON file

        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise IniError(f"{path}:{exc.lineno}", f"not JSON: {exc.msg}") from None
        table = document.get(section) if isinstance(document, dict) else None
        if not isinstance(table, dict):
            return False
        block = None
        for key, given in table.items():
            for item in given if isinstance(given, list) else [given]:
                if isinstance(item, dict | list):
                    raise IniError(f"{path}:{key}", "a nested JSON value is not an option value")
                value = {True: "1", False: "0", None: "0"}.get(item, str(item))
                value, notes = self._magic(path, section, value)
                block = self._take(Option(key, value, f"{path}:{key}", tuple(notes)), path, block)
        return True

    def _take(self, option: Option, path: Path, block: _Block | None) -> _Block | None:
        """Add one option, honouring an open logic block; returns the block now open."""
        key = option.key
        if key in _BLOCK_ENDS:
            return None
        if key == "else" and block is not None:
            if block.runtime is None and block.key.startswith("if"):
                block.items = [] if block.items else [""]
            return block
        opens = key in _INCLUDES or _starts_block(key)
        if opens and block is not None:
            raise IniError(option.where, f"{key} inside an open {block.key} block")
        if key in _INCLUDES:
            file_part, section = split_include(option.value)
            target = self._last or path
            if file_part:
                target = (path.parent / file_part).resolve()
            section = section or DEFAULT_SECTION
            self.read_file(target, section, option.where, len(self._open), json=key != "ini")
            return None
        if _starts_block(key):
            return self._open_block(option)
        if block is None:
            self.options.append(option)
        elif block.runtime is not None:
            self.options.append(with_note(option, block.runtime))
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
            return value, runtime_references(value)
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
        return text, notes + runtime_references(text)


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
