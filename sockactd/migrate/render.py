"""The texts `sockactd migrate-uwsgi` writes: the TOML, two drop-ins, the report, the docs table.

Pure functions of a Migration (or of the rules): no files, no printing. The
paths are where the files go on the target system, relative to `/`; command.py
writes them under --out DIR or prints them.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from sockactd.migrate.convert import Migration, Outcome
from sockactd.migrate.option import short_where
from sockactd.migrate.rules import Fate, docs_rows

__all__ = ["docs_table", "files", "report", "toml_value", "units_to_enable"]

DROPIN = "uwsgi.conf"


def files(migration: Migration, source: str) -> dict[PurePosixPath, str]:
    """Relative path (etc/...) -> content, for every file the migration produces."""
    name = migration.name
    header = f"# Converted by `sockactd migrate-uwsgi` from {source}; review before use.\n"
    out = {PurePosixPath(f"etc/sockactd/{name}.toml"): header + _toml(migration)}
    units = PurePosixPath("etc/systemd/system")
    for unit, section, directives, tail in (
        ("socket", "Socket", migration.plan.socket, ""),
        ("service", "Service", migration.plan.service, _writable_hint(migration)),
    ):
        if directives or tail:
            body = "".join(f"{key}={value}\n" for key, value in directives)
            path = units / f"sockactd@{name}.{unit}.d" / DROPIN
            out[path] = f"{header}[{section}]\n{body}{tail}"
    if migration.plan.second:
        out[units / migration.plan.second_unit] = header + _second_unit(migration)
    return out


def _writable_hint(migration: Migration) -> str:
    """Commented ReadWritePaths=: what the app writes is for the operator to say."""
    where = migration.plan.settings.get("chdir") or f"/srv/{migration.name}/uploads"
    return (
        f"# The shipped unit lets the service write only /var/lib/sockactd/{migration.name}, "
        f"/run/sockactd/{migration.name}\n# and a private /tmp: list what the application "
        f"writes (uploads, caches, SQLite files), e.g.\n#ReadWritePaths={where}\n"
    )


def units_to_enable(migration: Migration) -> list[str]:
    """What `systemctl enable --now` needs: the instance's socket, and a second one if any."""
    second = [migration.plan.second_unit] if migration.plan.second else []
    return [f"sockactd@{migration.name}.socket", *second]


def _second_unit(migration: Migration) -> str:
    name, directives = migration.name, migration.plan.second
    body = "".join(f"{key}={value}\n" for key, value in directives)
    return (
        f"[Unit]\nDescription=sockactd {dict(directives)['FileDescriptorName']} sockets "
        f"for {name}\nDocumentation=man:sockactd(8)\n\n"
        f"[Socket]\n{body}Service=sockactd@{name}.service\n\n"
        "[Install]\nWantedBy=sockets.target\n"
    )


def _toml(migration: Migration) -> str:
    where: dict[str, list[str]] = {}
    for line in migration.lines:
        if line.outcome is Outcome.MAPPED and " in APP.toml" in line.text:
            key = line.text.split(" ", 1)[0]
            where.setdefault(key, []).append(short_where(line.option.where))
        elif line.text.startswith("env (TOML)"):
            where.setdefault("env", []).append(short_where(line.option.where))
    return "".join(
        f"{key} = {toml_value(value)}  # {', '.join(where.get(key, ['']))}\n"
        for key, value in migration.plan.settings.items()
    )


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def report(migration: Migration, source: str) -> str:
    """Every source option and what became of it; notes; the verdict."""
    name = migration.name
    lines = [f"migrate-uwsgi: {source} -> sockactd@{name}", ""]
    width = min(44, max((len(_shown(line.option)) for line in migration.lines), default=0))
    for line in migration.lines:
        label = {Outcome.MAPPED: "->", Outcome.DROPPED: "dropped:", Outcome.UNMAPPED: "NOT MAPPED:"}
        option = _shown(line.option).ljust(width)
        lines.append(f"  {short_where(line.option.where):<16} {option}  {label[line.outcome]} "
                     f"{line.text.replace('APP', name)}")  # fmt: skip
    if migration.notes:
        lines += ["", "notes:"]
        lines += [
            f"  - {note.subject}: {note.text.replace('APP', name)}" for note in migration.notes
        ]
    unmapped = migration.unmapped
    lines.append("")
    if unmapped:
        lines.append(f"result: {len(unmapped)} not mapped ({', '.join(unmapped)}): review them")
    else:
        lines.append("result: every option mapped or explained")
    return "\n".join(lines) + "\n"


def _shown(option: object) -> str:
    key, value = getattr(option, "key", ""), getattr(option, "value", "")
    text = f"{key} = {value}" if value else key
    return text if len(text) <= 44 else text[:41] + "..."


_SECTIONS = {
    Fate.SETTING: "Becomes a setting in `/etc/sockactd/APP.toml`",
    Fate.SOCKET: "Becomes a directive of `sockactd@APP.socket` (drop-in)",
    Fate.SERVICE: "Becomes a directive of `sockactd@APP.service` (drop-in)",
    Fate.DROPPED: "Not needed: the same behaviour comes another way (exit status 0)",
    Fate.NONE: "No equivalent (reported as not mapped: exit status 1)",
    Fate.NOT_YET: "No equivalent yet (reported as not mapped: exit status 1)",
}


def docs_table() -> list[str]:
    """The Markdown tables of docs/migrating-from-uwsgi.md, from the rules."""
    out: list[str] = []
    current = None
    for fate, names, rule in docs_rows():
        if fate is not current:
            current = fate
            out += [
                "",
                f"### {_SECTIONS[fate]}",
                "",
                "| uWSGI | sockactd | notes |",
                "|---|---|---|",
            ]
        shown = ", ".join(f"`{n}*`" if rule.prefix else f"`{n}`" for n in names)
        does = f"`{rule.does}`" if fate is Fate.SETTING and "`" not in rule.does else rule.does
        cells = [shown, does or "-", rule.why]
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return out[1:]
