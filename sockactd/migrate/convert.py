"""Apply the rules to a list of uWSGI options: a Migration that render.py writes out.

Every source option gets exactly one Line in the report: MAPPED (what it became),
DROPPED (why it is not needed) or UNMAPPED (why not, and what to do). Values that
go into the TOML are checked with sockactd's own validation (config/load.py), so
the TOML written is one `sockactd --check` accepts. Findings that concern the
whole site rather than one option (no application named, code under /home) are
Notes; a note that makes the result incomplete counts like an UNMAPPED line.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field

from sockactd.config.load import validate_setting
from sockactd.config.settings import Kind, by_name
from sockactd.errors import ConfigError
from sockactd.migrate.option import Option, short_where
from sockactd.migrate.rules import Fate, Rule, rule_for
from sockactd.migrate.units import Plan, Unmappable, is_false
from sockactd.migrate.uwsgi_options import UWSGI_OPTIONS

__all__ = ["Line", "Migration", "Note", "Outcome", "convert"]

_PATH_SETTINGS = ("chdir", "pythonpath", "wsgi-file", "home", "touch-reload",
                  "touch-workers-reload", "touch-chain-reload")  # fmt: skip


class Outcome(enum.Enum):
    MAPPED = "mapped"
    DROPPED = "dropped"
    UNMAPPED = "NOT MAPPED"


@dataclass(frozen=True, slots=True)
class Line:
    option: Option
    outcome: Outcome
    text: str


@dataclass(frozen=True, slots=True)
class Note:
    subject: str  # what it is about: named in the verdict when incomplete
    text: str
    incomplete: bool = False  # the site would not work (or not the same) without acting on it


@dataclass
class Migration:
    name: str
    plan: Plan = field(default_factory=Plan)
    lines: list[Line] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def unmapped(self) -> list[str]:
        """Names of what could not be carried over (empty: exit status 0)."""
        names = [line.option.key for line in self.lines if line.outcome is Outcome.UNMAPPED]
        names += [note.subject for note in self.notes if note.incomplete]
        return list(dict.fromkeys(names))


def convert(options: list[Option], name: str) -> Migration:
    """The Migration of `options` (as read by ini.py) to instance `name`."""
    migration = Migration(name, plan=Plan(name=name))
    last: dict[str, Option] = {}  # a setting that takes one value -> the option that won
    for option in options:
        outcome, text = _one(option, migration.plan)
        migration.lines.append(Line(option, outcome, text))
        name = text.split(" ", 1)[0]
        if (
            outcome is Outcome.MAPPED
            and " in APP.toml" in text
            and by_name(name).kind is not Kind.LIST
        ):
            last[name] = option
    for index, line in enumerate(migration.lines):
        winner = last.get(line.text.split(" ", 1)[0])
        if winner is not None and winner is not line.option and " in APP.toml" in line.text:
            text = f"{line.text}; overridden by {short_where(winner.where)}"
            migration.lines[index] = Line(line.option, line.outcome, text)
    _check_site(migration)
    return migration


def _one(option: Option, plan: Plan) -> tuple[Outcome, str]:
    rule = rule_for(option.key)
    if rule is None:
        if option.key in UWSGI_OPTIONS:
            return Outcome.UNMAPPED, "no rule for this uWSGI option yet: check by hand"
        return Outcome.DROPPED, "not a uWSGI option (uWSGI ignores it): a placeholder variable"
    carries_value = rule.handler is not None or rule.fate is Fate.SETTING
    if option.runtime and carries_value:  # a value that only uWSGI's run time knows
        return Outcome.UNMAPPED, "cannot be decided from the file: " + "; ".join(option.runtime)
    if rule.handler is not None:
        try:
            text = rule.handler(option.value, plan)
        except Unmappable as exc:
            return Outcome.UNMAPPED, str(exc)
        return (Outcome.DROPPED if rule.fate is Fate.DROPPED else Outcome.MAPPED), text
    if rule.fate is Fate.SETTING:
        return _to_setting(option, rule, plan)
    if rule.fate is Fate.DROPPED:
        return Outcome.DROPPED, f"{rule.does}: {rule.why}" if rule.why else rule.does
    why = f": {rule.why}" if rule.why else ""
    return Outcome.UNMAPPED, f"{rule.fate.value}{why}"


def _to_setting(option: Option, rule: Rule, plan: Plan) -> tuple[Outcome, str]:
    setting = by_name(rule.does)
    value: object = option.value
    if setting.kind is Kind.BOOL:
        value = not is_false(option.value)
    elif setting.kind is Kind.LIST:
        value = [option.value]
    try:
        checked = validate_setting(setting, value, f"from {option.where}")
    except ConfigError as exc:
        return Outcome.UNMAPPED, f"{setting.name}: {exc.message}"
    if setting.kind is Kind.LIST:
        assert isinstance(checked, list)
        current = plan.settings.setdefault(setting.name, [])
        assert isinstance(current, list)
        current.extend(checked)
    else:
        plan.settings[setting.name] = checked
    alias = f" (uWSGI's `{option.key}`)" if option.key != setting.name else ""
    note = f"; {rule.why}" if rule.why else ""
    return Outcome.MAPPED, f"{setting.name} in APP.toml{alias}{note}"


def _check_site(migration: Migration) -> None:
    settings, plan = migration.plan.settings, migration.plan
    apps = [key for key in ("module", "wsgi-file") if settings.get(key)]
    if not apps:
        migration.notes.append(Note("application", "no `module` or `wsgi-file` found; "
                                    "add one to APP.toml", incomplete=True))  # fmt: skip
    elif len(apps) == 2:
        migration.notes.append(Note("application", "both `module` and `wsgi-file` given; "
                                    "keep one in APP.toml", incomplete=True))  # fmt: skip
    if plan.second:
        migration.notes.append(Note(
            "second socket unit", f"{plan.second_unit} carries the "
            f"{dict(plan.second)['FileDescriptorName']} sockets; enable it too "
            "(chmod-socket, chown-socket and listen apply to sockactd@APP.socket)"))  # fmt: skip
    if plan.protocol is None:
        migration.notes.append(Note(
            "socket", "none converted; the shipped sockactd@APP.socket listens on "
            "/run/sockactd/APP.sock (uwsgi protocol)"))  # fmt: skip
    paths = [str(v) for key in _PATH_SETTINGS for v in _as_list(settings.get(key))]
    if any(os.path.abspath(p).startswith(("/home/", "/root/")) for p in paths):
        plan.add_service("ProtectHome", "read-only")
        migration.notes.append(Note(
            "ProtectHome=read-only", "the application lives under /home or /root, which the "
            "shipped unit hides; deploying to /srv or /opt avoids it"))  # fmt: skip
    migration.notes.append(Note(
        "writable paths", "the shipped unit makes the file system read-only for the service "
        "(ProtectSystem=strict) except /var/lib/sockactd/APP, /run/sockactd/APP and a private "
        "/tmp; add ReadWritePaths= to the service drop-in for what the application writes "
        "(uploads, caches, SQLite files)"))  # fmt: skip


def _as_list(value: object) -> list[object]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list) else [value]
