"""Merge the config file, the environment and the command line into one Config.

Every source is driven by settings.SETTINGS; no setting is named here except
the few whose values need a check beyond their kind (env, chmod-socket, module).

    TOML file (--config / SOCKACTD_CONFIG)  <  SOCKACTD_<NAME>  <  command line

A higher source replaces a value wholesale, lists included (a list given on the
command line is not appended to the file's list). Strings are parsed the same
way wherever they come from; the file may also use TOML's own types. An empty
SOCKACTD_* variable counts as unset, and SOCKACTD_* variables that name no
setting are ignored (CI and tests set some of their own).

Every problem becomes a ConfigError naming the setting and where the value came
from. This module never binds, forks, imports the application or exits:
cli.py turns a ConfigError into exit status 78.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import NoReturn

from sockactd.config.model import Config
from sockactd.config.settings import SETTINGS, Kind, Setting
from sockactd.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "CommandLine",
    "SettingError",
    "config_from",
    "help_text",
    "load_config",
    "read_command_line",
]

CONFIG_ENV = "SOCKACTD_CONFIG"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_POSITIONAL = "positional module"


class SettingError(ConfigError):
    """A ConfigError that also says which source gave the bad value."""

    def __init__(self, setting: str, source: str, message: str) -> None:
        super().__init__(setting, message)
        self.source = source
        self.args = (f"setting '{setting}' ({source}): {message}",)


@dataclass(frozen=True, slots=True)
class CommandLine:
    """The command line, parsed but not yet converted or validated."""

    values: Mapping[str, object]  # setting name -> str | bool | list[str], only those given
    config_file: str | None
    check: bool = False
    show_help: bool = False
    show_version: bool = False


@dataclass(frozen=True, slots=True)
class _Raw:
    value: object
    source: str  # "from --processes", "from SOCKACTD_PROCESSES", ...


def load_config(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    """Parse `argv` (without the program name), read the file and `environ`, validate."""
    return config_from(read_command_line(argv), environ)


def config_from(command_line: CommandLine, environ: Mapping[str, str]) -> Config:
    """The Config for an already parsed command line (cli.py parses once)."""
    path, path_source = _config_path(command_line, environ)
    layers = [
        _from_file(path, path_source) if path else {},
        _from_environ(environ),
        {name: _Raw(value, _cli_source(name)) for name, value in command_line.values.items()},
    ]
    values: dict[str, object] = {}
    for setting in SETTINGS:
        raw = next(
            (layer[setting.name] for layer in reversed(layers) if setting.name in layer),
            _Raw(setting.default, "default"),
        )
        values[setting.attr] = _validate(setting, raw)
    _check_application(values, layers)
    return Config(**values, config_file=os.path.abspath(path) if path else None)  # type: ignore[arg-type]


# --- command line -------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting: cli.py owns the exit."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(None, f"{message} (see 'sockactd --help')")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise ConfigError(None, message or f"argument parser exited with status {status}")


def read_command_line(argv: Sequence[str]) -> CommandLine:
    """Parse flags into raw strings; raise ConfigError for unknown or malformed flags."""
    parsed = vars(_parser().parse_args(list(argv)))
    positional = parsed.pop(_POSITIONAL, None)
    if positional is not None:
        if "module" in parsed:
            raise SettingError(
                "module",
                "from the command line",
                "given both as a positional argument and as --module",
            )
        parsed["module"] = positional
    return CommandLine(
        values={s.name: parsed[s.attr] for s in SETTINGS if s.attr in parsed},
        config_file=parsed.get("config"),
        check=bool(parsed.get("check")),
        show_help=bool(parsed.get("help")),
        show_version=bool(parsed.get("version")),
    )


def help_text() -> str:
    return _parser().format_help()


@cache
def _parser() -> _Parser:
    parser = _Parser(
        prog="sockactd",
        add_help=False,
        allow_abbrev=False,
        usage="sockactd [OPTIONS] [MODULE:CALLABLE]\n       sockactd ctl [--help] COMMAND ...",
        description="A WSGI application server made for systemd.",
        epilog="Every setting can also be set in the TOML file given by --config (key = long "
        "name) and as SOCKACTD_<NAME> in the environment; the command line wins over "
        "the environment, which wins over the file. `sockactd ctl` is sockactctl.",
        argument_default=argparse.SUPPRESS,
    )
    general = parser.add_argument_group("General")
    general.add_argument("-h", "--help", action="store_true", help="Show this help and exit.")
    general.add_argument("--version", action="store_true", help="Show the version and exit.")
    general.add_argument(
        "--config", metavar="FILE", help=f"Read settings from this TOML file [env {CONFIG_ENV}]."
    )
    general.add_argument(
        "--check",
        action="store_true",
        help="Validate the configuration and import the application in this "
        "process, then exit (0 ok, 4 import failed, 78 bad config).",
    )
    general.add_argument(
        _POSITIONAL, nargs="?", metavar="MODULE:CALLABLE", help="Same as --module."
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in SETTINGS:
        if setting.section not in groups:
            groups[setting.section] = parser.add_argument_group(setting.section)
        _add_flag(groups[setting.section], setting)
    return parser


def _add_flag(group: argparse._ArgumentGroup, setting: Setting) -> None:
    flags = [setting.flag, *setting.aliases]
    text = _help_for(setting)
    if setting.kind is Kind.BOOL:
        group.add_argument(
            *flags, dest=setting.attr, action=argparse.BooleanOptionalAction, help=text
        )
        return
    metavar = setting.metavar or None
    if setting.kind is Kind.CHOICE:
        metavar = "{" + ",".join(setting.choices) + "}"
    action = "append" if setting.kind is Kind.LIST else "store"
    group.add_argument(*flags, dest=setting.attr, action=action, metavar=metavar, help=text)


def _help_for(setting: Setting) -> str:
    default = setting.default
    shown = "" if default in (None, [], "") else f"; default {_show_default(default)}"
    repeat = "; comma-separated" if setting.kind is Kind.LIST else ""
    return f"{setting.doc} [env {setting.env}{repeat}{shown}]".replace("%", "%%")


def _show_default(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cli_source(name: str) -> str:
    return f"from --{name}"


# --- file and environment ---------------------------------------------------------------


def _config_path(command_line: CommandLine, environ: Mapping[str, str]) -> tuple[str | None, str]:
    if command_line.config_file is not None:
        return command_line.config_file, "from --config"
    return environ.get(CONFIG_ENV) or None, f"from {CONFIG_ENV}"


def _from_file(path: str, path_source: str) -> dict[str, _Raw]:
    import tomllib  # only when a file is used: keeps the cold start short

    try:
        with open(path, "rb") as file:
            table = tomllib.load(file)
    except OSError as exc:
        raise SettingError("config", path_source, f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingError("config", path_source, f"{path} is not valid TOML: {exc}") from None
    known = {s.name for s in SETTINGS}
    for key in table:
        if key not in known:
            raise SettingError(key, f"from {path}", "unknown setting" + _did_you_mean(key, known))
    return {key: _Raw(value, f"from {path}") for key, value in table.items()}


def _did_you_mean(key: str, known: set[str]) -> str:
    import difflib  # error path only

    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _from_environ(environ: Mapping[str, str]) -> dict[str, _Raw]:
    found: dict[str, _Raw] = {}
    for setting in SETTINGS:
        text = environ.get(setting.env, "")
        if text:
            value: object = text
            if setting.kind is Kind.LIST:
                value = [item.strip() for item in text.split(",") if item.strip()]
            found[setting.name] = _Raw(value, f"from {setting.env}")
    return found


# --- conversion and validation -------------------------------------------------------------


def _validate(setting: Setting, raw: _Raw) -> object:
    value = raw.value
    if value is None and setting.default is None:
        return None
    try:
        value = _CONVERTERS[setting.kind](setting, value)
    except ValueError as exc:
        raise SettingError(setting.name, raw.source, str(exc)) from None
    for check in (setting.check, _EXTRA_CHECKS.get(setting.name)):
        problem = check(value) if check is not None else None
        if problem is not None:
            raise SettingError(setting.name, raw.source, problem)
    return value


def _describe(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    kind = {bool: "boolean", int: "integer", float: "number", list: "array", dict: "table"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}"


def _to_str(setting: Setting, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_describe(value)}")
    return value


def _to_int(setting: Setting, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            pass
    raise ValueError(f"expected an integer, got {_describe(value)}")


def _to_float(setting: Setting, value: object) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ValueError(f"expected a number, got {_describe(value)}")
    return number


def _to_bool(setting: Setting, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
    raise ValueError(
        f"expected a boolean (1/0, true/false, yes/no, on/off), got {_describe(value)}"
    )


def _to_list(setting: Setting, value: object) -> list[str]:
    if isinstance(value, str):
        return [value]  # `socket = "/run/app.sock"` in the file means a list of one
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)  # a copy: the table's default list must never be shared
    raise ValueError(f"expected a string or a list of strings, got {_describe(value)}")


def _to_choice(setting: Setting, value: object) -> str:
    text = _to_str(setting, value).strip().lower()
    if text not in setting.choices:
        raise ValueError(f"expected one of {', '.join(setting.choices)}, got {value!r}")
    return text


_CONVERTERS: Mapping[Kind, Callable[[Setting, object], object]] = {
    Kind.STR: _to_str,
    Kind.INT: _to_int,
    Kind.FLOAT: _to_float,
    Kind.BOOL: _to_bool,
    Kind.LIST: _to_list,
    Kind.CHOICE: _to_choice,
}


def _check_env_entries(value: object) -> str | None:
    assert isinstance(value, list)
    for entry in value:
        key, equals, _ = entry.partition("=")
        if not equals or not key or "\0" in entry:
            return f"expected KEY=VALUE entries, got {entry!r}"
    return None


def _check_octal_mode(value: object) -> str | None:
    assert isinstance(value, str)
    if len(value) in (3, 4) and all(digit in "01234567" for digit in value):
        return None
    return f"expected an octal mode such as 660 or 0660, got {value!r}"


def _check_module(value: object) -> str | None:
    assert isinstance(value, str)
    module, colon, attribute = value.partition(":")
    dotted = all(part.isidentifier() for part in module.split("."))
    if dotted and (not colon or attribute):
        return None
    return f"expected package.module or package.module:callable, got {value!r}"


def _check_trusted_proxies(value: object) -> str | None:
    assert isinstance(value, list)
    if not value:
        return None
    from sockactd.errors import ConfigError
    from sockactd.protocols.proxy import TrustedProxies

    try:
        TrustedProxies(value)
    except ConfigError as exc:
        return exc.message
    return None


_EXTRA_CHECKS: Mapping[str, Callable[[object], str | None]] = {
    "env": _check_env_entries,
    "trusted-proxies": _check_trusted_proxies,
    "chmod-socket": _check_octal_mode,
    "module": _check_module,
}


def _check_application(values: Mapping[str, object], layers: Sequence[dict[str, _Raw]]) -> None:
    """Exactly one of module / wsgi-file must name the application."""
    if values["module"] and values["wsgi_file"]:
        where = [_source_of("module", layers), _source_of("wsgi-file", layers)]
        raise SettingError(
            "module", " and ".join(where), "give either 'module' or 'wsgi-file', not both"
        )
    if not values["module"] and not values["wsgi_file"]:
        raise ConfigError(
            "module", "no application to serve: give MODULE:CALLABLE, --module or --wsgi-file"
        )


def _source_of(name: str, layers: Sequence[dict[str, _Raw]]) -> str:
    return next((layer[name].source for layer in reversed(layers) if name in layer), "default")
