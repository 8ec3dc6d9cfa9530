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

Why one module of ~600 lines: the three sources, the hand-written command-line
parser (see "command line" below), --help and the conversions meet in `_Raw` and
`SettingError`, and one merge order runs through them; each `# ---` section reads
on its own, and splitting them would spread that order over several files.
"""

from __future__ import annotations

import math
import os

from sockactd.config.model import Config
from sockactd.config.settings import SETTINGS, Kind, Setting
from sockactd.errors import ConfigError
from sockactd.modes import ReloadMode

TYPE_CHECKING = False  # typing itself is not imported at run time: it costs cold-start time
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator, Mapping, Sequence

__all__ = [
    "CONFIG_ENV",
    "CommandLine",
    "SettingError",
    "config_from",
    "help_text",
    "load_config",
    "read_command_line",
    "validate_setting",
]

CONFIG_ENV = "SOCKACTD_CONFIG"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingError(ConfigError):
    """A ConfigError that also says which source gave the bad value."""

    def __init__(self, setting: str, source: str, message: str) -> None:
        super().__init__(setting, message)
        self.source = source
        self.args = (f"setting '{setting}' ({source}): {message}",)


class CommandLine:
    """The command line, parsed but not yet converted or validated."""

    __slots__ = ("check", "config_file", "show_help", "show_version", "values")

    def __init__(
        self,
        values: Mapping[str, object],  # setting name -> str | bool | list[str], only those given
        config_file: str | None,
        check: bool = False,
        show_help: bool = False,
        show_version: bool = False,
    ) -> None:
        self.values = values
        self.config_file = config_file
        self.check = check
        self.show_help = show_help
        self.show_version = show_version


class _Raw:
    __slots__ = ("source", "value")

    def __init__(self, value: object, source: str) -> None:
        self.value = value
        self.source = source  # "from --processes", "from SOCKACTD_PROCESSES", ...


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
    _check_autoreload(values, layers, environ)
    return Config(**values, config_file=os.path.abspath(path) if path else None)


# --- command line -------------------------------------------------------------------
#
# A small hand-written parser driven by SETTINGS: argparse (with gettext and locale)
# and building its ~40 actions cost more than the rest of the start-up, so argparse
# is imported only to render --help. The grammar is argparse's, without prefix
# abbreviations: `--name VALUE` or `--name=VALUE`; short aliases also as `-sVALUE`;
# `--flag` / `--no-flag` for booleans; a list option appends each time it is given,
# any other option keeps its last value; one positional MODULE:CALLABLE; `--` ends
# the options. A value may not look like an option (a negative number does not).
# Error messages are argparse's, so scripts and operators see what they always saw.


class _Option:
    """What one option string does: set `dest` to a value it takes, or to `constant`."""

    __slots__ = ("constant", "dest", "display", "repeats", "takes_value")

    def __init__(
        self, dest: str, display: str, *, constant: object = None, repeats: bool = False
    ) -> None:
        self.dest = dest  # a setting name, or one of the general options below
        self.display = display  # every spelling, for messages: "--processes/--workers/-p"
        self.takes_value = constant is None
        self.constant = constant
        self.repeats = repeats


_GENERAL_FLAGS = {"help": ("-h", "--help"), "version": ("--version",), "check": ("--check",)}


def _option_table() -> dict[str, _Option]:
    options: dict[str, _Option] = {"--config": _Option("config", "--config")}
    for dest, spellings in _GENERAL_FLAGS.items():
        flag = _Option(dest, "/".join(spellings), constant=True)
        options.update(dict.fromkeys(spellings, flag))
    for setting in SETTINGS:
        spellings = (setting.flag, *setting.aliases)
        if setting.kind is Kind.BOOL:
            negated = ["--no-" + spelling[2:] for spelling in spellings if spelling[1] == "-"]
            display = "/".join(spellings + tuple(negated))
            options.update(dict.fromkeys(spellings, _Option(setting.name, display, constant=True)))
            options.update(dict.fromkeys(negated, _Option(setting.name, display, constant=False)))
            continue
        repeats = setting.kind is Kind.LIST
        option = _Option(setting.name, "/".join(spellings), repeats=repeats)
        options.update(dict.fromkeys(spellings, option))
    return options


_OPTIONS = _option_table()


def read_command_line(argv: Sequence[str]) -> CommandLine:
    """Parse flags into raw strings; raise ConfigError for unknown or malformed flags."""
    given: dict[str, object] = {}
    module: str | None = None
    unrecognized: list[str] = []  # in command-line order, for the one error message
    options_ended = False
    args = iter(argv)
    for arg in args:
        if arg == "--" and not options_ended:
            options_ended = True
            continue
        found = None if options_ended else _find_option(arg)
        if found is not None:
            option, attached = found
            _store(given, option, _value_for(option, attached, args))
        elif module is None and (options_ended or not _looks_like_option(arg)):
            module = arg  # the one positional argument
        else:
            unrecognized.append(arg)  # an unknown option, or a second positional
    if unrecognized:
        raise _usage_error(f"unrecognized arguments: {' '.join(unrecognized)}")
    return _command_line(given, module)


def _find_option(arg: str) -> tuple[_Option, str | None] | None:
    """The option `arg` names and the value attached to it (`--name=VALUE`, `-sVALUE`)."""
    if arg in _OPTIONS:
        return _OPTIONS[arg], None
    name, equals, attached = arg.partition("=")
    if equals and name in _OPTIONS:
        return _OPTIONS[name], attached
    if len(arg) > 2 and arg[1] != "-" and arg[:2] in _OPTIONS:
        return _OPTIONS[arg[:2]], arg[2:]
    return None


def _looks_like_option(arg: str) -> bool:
    """For an `arg` that names no option: argparse's rule for an unknown option.

    A dash starts an option, except a lone '-', a negative number, or text with a space.
    """
    if len(arg) < 2 or arg[0] != "-" or " " in arg:
        return False
    return not _is_negative_number(arg[1:])


def _is_negative_number(digits: str) -> bool:
    """`digits` (after the minus sign) is 5, 5.5 or .5."""
    whole, dot, fraction = digits.partition(".")
    if not dot:
        return whole.isdecimal()
    return (whole == "" or whole.isdecimal()) and fraction.isdecimal()


def _value_for(option: _Option, attached: str | None, rest: Iterator[str]) -> object:
    if not option.takes_value:
        if attached is not None:
            raise _usage_error(f"argument {option.display}: ignored explicit argument {attached!r}")
        return option.constant
    if attached is not None:
        return attached
    value = next(rest, None)
    if value is None or value == "--" or _find_option(value) or _looks_like_option(value):
        raise _usage_error(f"argument {option.display}: expected one argument")
    return value


def _store(given: dict[str, object], option: _Option, value: object) -> None:
    if option.repeats:
        previous = given.get(option.dest)
        given[option.dest] = [*previous, value] if isinstance(previous, list) else [value]
    else:
        given[option.dest] = value


def _command_line(given: dict[str, object], module: str | None) -> CommandLine:
    if module is not None:
        if "module" in given:
            raise SettingError(
                "module",
                "from the command line",
                "given both as a positional argument and as --module",
            )
        given["module"] = module
    config_file = given.pop("config", None)
    flags = {dest: bool(given.pop(dest, False)) for dest in _GENERAL_FLAGS}
    return CommandLine(
        values=given,
        config_file=config_file if isinstance(config_file, str) else None,
        check=flags["check"],
        show_help=flags["help"],
        show_version=flags["version"],
    )


def _usage_error(message: str) -> ConfigError:
    return ConfigError(None, f"{message} (see 'sockactd --help')")


def _cli_source(name: str) -> str:
    return f"from --{name}"


# --- --help ---------------------------------------------------------------------------


def help_text() -> str:
    """`sockactd --help`, rendered by argparse from the same table the parser reads."""
    import argparse  # rendering help is the only use: see "command line" above

    parser = argparse.ArgumentParser(
        prog="sockactd",
        add_help=False,
        usage="sockactd [OPTIONS] [MODULE:CALLABLE]\n       sockactd ctl [--help] COMMAND ...",
        description="A WSGI application server made for systemd.",
        epilog="Every setting can also be set in the TOML file given by --config (key = long "
        "name) and as SOCKACTD_<NAME> in the environment; the command line wins over "
        "the environment, which wins over the file. `sockactd ctl` is sockactctl.",
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
        "process, then exit (0 ok, 70 import failed, 78 bad config).",
    )
    general.add_argument("module", nargs="?", metavar="MODULE:CALLABLE", help="Same as --module.")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in SETTINGS:
        if setting.section not in groups:
            groups[setting.section] = parser.add_argument_group(setting.section)
        _add_flag(groups[setting.section], setting)
    return parser.format_help()


def _add_flag(group: argparse._ArgumentGroup, setting: Setting) -> None:
    import argparse

    flags = [setting.flag, *setting.aliases]
    text = _help_for(setting)
    if setting.kind is Kind.BOOL:
        group.add_argument(*flags, action=argparse.BooleanOptionalAction, help=text)
        return
    metavar = setting.metavar or None
    if setting.kind is Kind.CHOICE:
        metavar = "{" + ",".join(setting.choices) + "}"
    elif setting.kind is Kind.MODE:
        metavar = "{" + ",".join(ReloadMode.names()) + "}"
    action = "append" if setting.kind is Kind.LIST else "store"
    group.add_argument(*flags, action=action, metavar=metavar, help=text)


def _help_for(setting: Setting) -> str:
    default = setting.default
    shown = "" if default in (None, [], "") else f"; default {_show_default(default)}"
    repeat = "; comma-separated" if setting.kind is Kind.LIST else ""
    return f"{setting.doc} [env {setting.env}{repeat}{shown}]".replace("%", "%%")


def _show_default(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


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
    found: dict[str, _Raw] = {}
    keys: dict[str, str] = {}  # setting name -> the key the file used for it
    for key, value in table.items():
        name = _FILE_KEYS.get(key)
        if name is None:
            known = set(_FILE_KEYS)
            raise SettingError(key, f"from {path}", "unknown setting" + _did_you_mean(key, known))
        if name in keys:
            raise SettingError(
                name, f"from {path}", f"given twice, as '{keys[name]}' and as '{key}'"
            )
        keys[name] = key
        found[name] = _Raw(value, f"from {path}")
    return found


def _file_keys() -> dict[str, str]:
    """TOML key -> setting name: every name, and every long alias (uWSGI's `virtualenv`)."""
    keys = {setting.name: setting.name for setting in SETTINGS}
    for setting in SETTINGS:
        keys.update({alias[2:]: setting.name for alias in setting.aliases if alias[:2] == "--"})
    return keys


_FILE_KEYS = _file_keys()


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


def validate_setting(setting: Setting, value: object, source: str) -> object:
    """One value converted and checked exactly as a config file's (raises SettingError).

    For tools that write configuration (`sockactd migrate-uwsgi`), so what they write
    is what the server accepts.
    """
    return _validate(setting, _Raw(value, source))


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


def _to_mode(setting: Setting, value: object) -> ReloadMode:
    """The configuration's edge for reload modes: a name becomes a ReloadMode here."""
    if isinstance(value, ReloadMode):
        return value  # the table's default
    text = _to_str(setting, value).strip().lower()
    try:
        return ReloadMode.parse(text)
    except ValueError:
        raise ValueError(
            f"expected one of {', '.join(ReloadMode.names())}, got {value!r}"
        ) from None


_CONVERTERS: Mapping[Kind, Callable[[Setting, object], object]] = {
    Kind.STR: _to_str,
    Kind.INT: _to_int,
    Kind.FLOAT: _to_float,
    Kind.BOOL: _to_bool,
    Kind.LIST: _to_list,
    Kind.CHOICE: _to_choice,
    Kind.MODE: _to_mode,
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
    from sockactd.protocols.proxy import TrustedProxies  # the parser serve.py uses

    try:
        TrustedProxies(value)
    except ValueError as exc:
        return str(exc)
    return None


def _check_home(value: object) -> str | None:
    assert isinstance(value, str)
    from sockactd.venv import VenvError, site_packages

    try:
        site_packages(value)
    except VenvError as exc:
        return str(exc)
    return None


_EXTRA_CHECKS: Mapping[str, Callable[[object], str | None]] = {
    "home": _check_home,
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


def _check_autoreload(
    values: Mapping[str, object], layers: Sequence[dict[str, _Raw]], environ: Mapping[str, str]
) -> None:
    """py-autoreload (or reload) needs lazy-apps, and is refused under systemd unless allowed."""
    name = "py-autoreload" if values["py_autoreload"] else "reload"
    if not values[name.replace("-", "_")]:
        return
    if not values["lazy_apps"]:
        raise SettingError(
            name,
            _source_of(name, layers),
            "needs lazy-apps: a reload must import the new code in new workers "
            "(set lazy-apps = true)",
        )
    if environ.get("INVOCATION_ID") and not values["autoreload_under_systemd"]:
        raise SettingError(
            name,
            _source_of(name, layers),
            "is a development tool and is refused under systemd (INVOCATION_ID is set); "
            "a production site reloads by touch-chain-reload or 'systemctl reload'. "
            "Set autoreload-under-systemd = true to use it anyway",
        )


def _source_of(name: str, layers: Sequence[dict[str, _Raw]]) -> str:
    return next((layer[name].source for layer in reversed(layers) if name in layer), "default")
