"""load_config: precedence of the three sources, every kind of value, every error message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from sockactd.config.load import load_config, read_command_line
from sockactd.config.model import Config
from sockactd.config.settings import SETTINGS, Kind, by_name
from sockactd.errors import ConfigError, ExitCode
from sockactd.modes import ReloadMode
from tests.support import run_python

APP = "hello:app"


def load(
    tmp_path: Path,
    argv: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    toml: str | None = None,
    app: bool = True,
) -> Config:
    """load_config with an optional TOML file (passed by --config) and a module by default."""
    args = list(argv)
    if toml is not None:
        path = tmp_path / "sockactd.toml"
        path.write_text(toml)
        args[:0] = ["--config", str(path)]
    if app:
        args.append(APP)
    return load_config(args, dict(env or {}))


# --- precedence -------------------------------------------------------------------------

PRECEDENCE = [
    # (file, environment, command line, expected processes)
    (None, None, None, 2),
    ("3", None, None, 3),
    ("3", "4", None, 4),
    ("3", "4", "5", 5),
    (None, "4", "5", 5),
    ("3", None, "5", 5),
    (None, "4", None, 4),
]


@pytest.mark.parametrize(("file", "env", "cli", "expected"), PRECEDENCE)
def test_command_line_beats_environment_beats_file_beats_default(
    tmp_path: Path, file: str | None, env: str | None, cli: str | None, expected: int
) -> None:
    config = load(
        tmp_path,
        argv=["--processes", cli] if cli else [],
        env={"SOCKACTD_PROCESSES": env} if env else {},
        toml=f"processes = {file}\n" if file else None,
    )
    assert config.processes == expected


LIST_PRECEDENCE = [
    # a higher source replaces the list, it does not extend it
    (None, None, [], []),
    ('["a", "b"]', None, [], ["a", "b"]),
    ('["a", "b"]', "c, d", [], ["c", "d"]),
    ('["a", "b"]', "c, d", ["e", "f"], ["e", "f"]),
    ('"one"', None, [], ["one"]),
]


@pytest.mark.parametrize(("file", "env", "cli", "expected"), LIST_PRECEDENCE)
def test_lists_are_replaced_by_a_higher_source(
    tmp_path: Path, file: str | None, env: str | None, cli: list[str], expected: list[str]
) -> None:
    argv = [arg for item in cli for arg in ("--socket", item)]
    config = load(
        tmp_path,
        argv=argv,
        env={"SOCKACTD_SOCKET": env} if env else {},
        toml=f"socket = {file}\n" if file else None,
    )
    assert config.socket == expected


def test_config_file_can_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "from-env.toml"
    path.write_text("threads = 7\n")
    config = load_config([APP], {"SOCKACTD_CONFIG": str(path)})
    assert (config.threads, config.config_file) == (7, str(path))


def test_config_flag_beats_config_environment_variable(tmp_path: Path) -> None:
    (tmp_path / "flag.toml").write_text("threads = 5\n")
    (tmp_path / "env.toml").write_text("threads = 9\n")
    config = load_config(
        ["--config", str(tmp_path / "flag.toml"), APP],
        {"SOCKACTD_CONFIG": str(tmp_path / "env.toml")},
    )
    assert config.threads == 5


def test_config_file_is_recorded_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rel.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert load_config(["--config", "rel.toml", APP], {}).config_file == str(tmp_path / "rel.toml")
    assert load_config([APP], {}).config_file is None


def test_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    config = load(
        tmp_path, env={"SOCKACTD_PROCESSES": "", "SOCKACTD_CHDIR": ""}, toml="processes = 6"
    )
    assert (config.processes, config.chdir) == (6, None)


def test_unknown_sockactd_variables_are_ignored(tmp_path: Path) -> None:
    assert load(tmp_path, env={"SOCKACTD_REQUIRE_ALL": "1"}) == load(tmp_path)


def test_defaults_are_the_table_defaults_and_lists_are_fresh(tmp_path: Path) -> None:
    config = load(tmp_path)
    for setting in SETTINGS:
        if setting.name != "module":
            assert getattr(config, setting.attr) == setting.default, setting.name
    assert config.pythonpath is not by_name("pythonpath").default


# --- each kind, from each source --------------------------------------------------------

KINDS = [
    # (setting, environment text, command line args, TOML value, expected)
    ("threads", "8", ["--threads", "8"], "8", 8),
    ("harakiri", "2.5", ["--harakiri", "2.5"], "2.5", 2.5),
    ("harakiri", "3", ["--harakiri", "3"], "3", 3.0),
    ("lazy-apps", "yes", ["--lazy-apps"], "true", True),
    ("lazy-apps", "off", ["--no-lazy-apps"], "false", False),
    ("reload-mode", "workers", ["--reload-mode", "workers"], '"workers"', ReloadMode.WORKERS),
    ("chdir", "/srv/app", ["--chdir", "/srv/app"], '"/srv/app"', "/srv/app"),
    (
        "http-socket",
        "127.0.0.1:8000,[::1]:8001",
        ["--http-socket", "127.0.0.1:8000", "--http-socket", "[::1]:8001"],
        '["127.0.0.1:8000", "[::1]:8001"]',
        ["127.0.0.1:8000", "[::1]:8001"],
    ),
    ("env", "A=1,B=x=y", ["--env", "A=1", "--env", "B=x=y"], '["A=1", "B=x=y"]', ["A=1", "B=x=y"]),
    ("chmod-socket", "0660", ["--chmod-socket", "0660"], '"0660"', "0660"),
    ("module", "pkg.mod:make", ["--module", "pkg.mod:make"], '"pkg.mod:make"', "pkg.mod:make"),
]


@pytest.mark.parametrize(("name", "env", "argv", "toml", "expected"), KINDS)
def test_each_kind_reads_the_same_from_every_source(
    tmp_path: Path, name: str, env: str, argv: list[str], toml: str, expected: object
) -> None:
    attr = by_name(name).attr
    app = name != "module"
    from_env = load(tmp_path, env={by_name(name).env: env}, app=app)
    from_cli = load(tmp_path, argv=argv, app=app)
    from_file = load(tmp_path, toml=f"{name} = {toml}\n", app=app)
    assert getattr(from_env, attr) == getattr(from_cli, attr) == getattr(from_file, attr)
    assert getattr(from_env, attr) == expected


BOOL_WORDS = [
    ("1", True), ("true", True), ("YES", True), ("on", True),
    ("0", False), ("false", False), ("No", False), ("off", False),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), BOOL_WORDS)
def test_boolean_words_in_the_environment(tmp_path: Path, text: str, expected: bool) -> None:
    assert load(tmp_path, env={"SOCKACTD_ACCESS_LOG": text}).access_log is expected


ALIASES = [
    (["--workers", "3"], "processes", 3),
    (["-p", "4"], "processes", 4),
    (["-s", "/run/a.sock"], "socket", ["/run/a.sock"]),
    (["-s", "a:1", "-s", "b:2"], "socket", ["a:1", "b:2"]),
    (["-l", "128"], "listen", 128),
    (["-R", "500"], "max_requests", 500),
    (["-b", "32768"], "buffer_size", 32768),
    (["--processes", "3", "--processes", "5"], "processes", 5),
]


@pytest.mark.parametrize(("argv", "attr", "expected"), ALIASES)
def test_aliases_and_repeats(tmp_path: Path, argv: list[str], attr: str, expected: object) -> None:
    assert getattr(load(tmp_path, argv=argv), attr) == expected


APPLICATION = [
    (["pkg.wsgi:app"], {}, ("pkg.wsgi:app", None)),
    (["--module", "pkg.wsgi"], {}, ("pkg.wsgi", None)),
    (["--wsgi-file", "/srv/app.py"], {}, (None, "/srv/app.py")),
    ([], {"SOCKACTD_MODULE": "env.mod:app"}, ("env.mod:app", None)),
    (["cli.mod:app"], {"SOCKACTD_MODULE": "env.mod:app"}, ("cli.mod:app", None)),
]


@pytest.mark.parametrize(("argv", "env", "expected"), APPLICATION)
def test_the_application_is_named_once(
    tmp_path: Path, argv: list[str], env: dict[str, str], expected: tuple[str | None, str | None]
) -> None:
    config = load(tmp_path, argv=argv, env=env, app=False)
    assert (config.module, config.wsgi_file) == expected


def test_command_line_without_settings_gives_no_values() -> None:
    parsed = read_command_line(["--check", "--config", "x.toml"])
    assert (parsed.values, parsed.config_file, parsed.check) == ({}, "x.toml", True)


# --- errors -----------------------------------------------------------------------------

ERRORS = [
    # (argv, environment, TOML, setting named, expected fragment of the message)
    ([], {"SOCKACTD_PROCESSES": "four"}, None, "processes",
     "setting 'processes' (from SOCKACTD_PROCESSES): expected an integer, got 'four'"),
    (["--processes", "zero"], {}, None, "processes",
     "setting 'processes' (from --processes): expected an integer, got 'zero'"),
    (["--processes", "0"], {}, None, "processes", "(from --processes): must be at least 1, got 0"),
    (["-p", "-3"], {}, None, "processes", "must be at least 1, got -3"),
    ([], {}, "processes = true", "processes", "expected an integer, got boolean True"),
    ([], {}, 'processes = "many"', "processes", "expected an integer, got 'many'"),
    ([], {}, "threads = 1.5", "threads", "expected an integer, got number 1.5"),
    ([], {"SOCKACTD_HARAKIRI": "inf"}, None, "harakiri", "expected a number, got 'inf'"),
    (["--ready-timeout", "0"], {}, None, "ready-timeout", "must be at least 0.1"),
    ([], {"SOCKACTD_LAZY_APPS": "maybe"}, None, "lazy-apps", "expected a boolean"),
    ([], {}, 'lazy-apps = "sometimes"', "lazy-apps", "expected a boolean"),
    (["--reload-mode", "fast"], {}, None, "reload-mode",
     "expected one of standard, workers, chain, got 'fast'"),
    ([], {}, "log-level = 3", "log-level", "expected a string, got integer 3"),
    ([], {"SOCKACTD_ENV": "A=1,JUSTKEY"}, None, "env", "expected KEY=VALUE entries, got 'JUSTKEY'"),
    (["--env", "=value"], {}, None, "env", "expected KEY=VALUE entries, got '=value'"),
    (["--chmod-socket", "999"], {}, None, "chmod-socket", "expected an octal mode"),
    (["--trusted-proxies", "10.0.0.300"], {}, None, "trusted-proxies", "not an IP address"),
    ([], {}, "chmod-socket = 660", "chmod-socket", "expected a string, got integer 660"),
    ([], {}, "http-socket = [8000]", "http-socket", "expected a string or a list of strings"),
    ([], {}, "socket = { a = 1 }", "socket", "expected a string or a list of strings"),
    ([], {}, "procesess = 3", "procesess", "unknown setting (did you mean 'processes'?)"),
    ([], {}, "[sockactd]\nprocesses = 3", "sockactd", "unknown setting"),
    ([], {}, "processes = ", "config", "is not valid TOML"),
    (["--module", "not a module"], {}, None, "module", "expected package.module"),
    (["--module", "pkg:"], {}, None, "module", "expected package.module"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "env", "toml", "setting", "fragment"), ERRORS)
def test_errors_name_the_setting_and_the_source(
    tmp_path: Path,
    argv: list[str],
    env: dict[str, str],
    toml: str | None,
    setting: str,
    fragment: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, argv=argv, env=env, toml=toml, app="--module" not in argv)
    assert caught.value.setting == setting
    assert caught.value.exit_code is ExitCode.CONFIG_INVALID
    message = str(caught.value)
    assert fragment in message
    assert message.startswith(f"setting '{setting}' (from ")
    if toml is not None and setting != "config":
        assert f"(from {tmp_path / 'sockactd.toml'})" in message


FILE_ERRORS = [
    (["--config", "{missing}"], {}, "(from --config): cannot read {missing}: No such file"),
    ([], {"SOCKACTD_CONFIG": "{missing}"}, "(from SOCKACTD_CONFIG): cannot read {missing}"),
    (["--config", "{dir}"], {}, "cannot read {dir}: Is a directory"),
]


@pytest.mark.parametrize(("argv", "env", "fragment"), FILE_ERRORS)
def test_unreadable_config_file(
    tmp_path: Path, argv: list[str], env: dict[str, str], fragment: str
) -> None:
    names = {"missing": str(tmp_path / "missing.toml"), "dir": str(tmp_path)}
    with pytest.raises(ConfigError) as caught:
        load_config(
            [arg.format(**names) for arg in argv] + [APP],
            {key: value.format(**names) for key, value in env.items()},
        )
    assert caught.value.setting == "config"
    assert fragment.format(**names) in str(caught.value)


APPLICATION_ERRORS = [
    ([], {}, "no application to serve"),
    (["pkg:app", "--wsgi-file", "/srv/app.py"], {}, "not both"),
    (
        ["pkg:app"],
        {"SOCKACTD_WSGI_FILE": "/srv/app.py"},
        "(from --module and from SOCKACTD_WSGI_FILE)",
    ),
    (
        ["pkg:app", "--module", "other:app"],
        {},
        "given both as a positional argument and as --module",
    ),
]


@pytest.mark.parametrize(("argv", "env", "fragment"), APPLICATION_ERRORS)
def test_exactly_one_application(
    tmp_path: Path, argv: list[str], env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, argv=argv, env=env, app=False)
    assert caught.value.setting == "module"
    assert fragment in str(caught.value)


COMMAND_LINE_ERRORS = [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--processes"], "argument --processes/--workers/-p: expected one argument"),
    (["--proc", "3"], "unrecognized arguments: --proc"),  # no abbreviations
    (["a:b", "c:d"], "unrecognized arguments: c:d"),
]


@pytest.mark.parametrize(("argv", "fragment"), COMMAND_LINE_ERRORS)
def test_malformed_command_lines(tmp_path: Path, argv: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(argv, {})
    assert caught.value.setting is None
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


# --- the command-line grammar (argparse's, parsed without argparse) ----------------------

PARSES = [
    # (argv, setting values given, config file, check, help, version)
    ([], {}, None, False, False, False),
    (["hello:app"], {"module": "hello:app"}, None, False, False, False),
    (["--processes", "3"], {"processes": "3"}, None, False, False, False),
    (["--processes=3"], {"processes": "3"}, None, False, False, False),
    (["--chdir="], {"chdir": ""}, None, False, False, False),
    (["--env=A=1"], {"env": ["A=1"]}, None, False, False, False),
    (["-p4"], {"processes": "4"}, None, False, False, False),
    (["-p=4"], {"processes": "4"}, None, False, False, False),
    (["-s/run/a.sock"], {"socket": ["/run/a.sock"]}, None, False, False, False),
    (["-sa=b"], {"socket": ["a=b"]}, None, False, False, False),
    (["-s", "a", "--socket=b", "-sc"], {"socket": ["a", "b", "c"]}, None, False, False, False),
    (["--workers", "2", "-p", "3"], {"processes": "3"}, None, False, False, False),
    (["--lazy-apps"], {"lazy-apps": True}, None, False, False, False),
    (["--no-lazy-apps"], {"lazy-apps": False}, None, False, False, False),
    (["--lazy-apps", "--no-lazy-apps"], {"lazy-apps": False}, None, False, False, False),
    # a value may be a negative number, a lone dash or contain a space, never an option
    (["-p", "-3"], {"processes": "-3"}, None, False, False, False),
    (["--harakiri", "-.5"], {"harakiri": "-.5"}, None, False, False, False),
    (["--chdir", "-"], {"chdir": "-"}, None, False, False, False),
    (["--chdir", "-a b"], {"chdir": "-a b"}, None, False, False, False),
    # the positional anywhere, once; after -- everything is positional
    (["a:b", "--threads", "2"], {"module": "a:b", "threads": "2"}, None, False, False, False),
    (["--", "-weird"], {"module": "-weird"}, None, False, False, False),
    (["--threads", "2", "--", "a:b"], {"threads": "2", "module": "a:b"}, None, False, False, False),
    (["a:b", "--"], {"module": "a:b"}, None, False, False, False),
    (["-5"], {"module": "-5"}, None, False, False, False),
    # the general options
    (["--config", "x.toml", "--check"], {}, "x.toml", True, False, False),
    (["--config=x.toml"], {}, "x.toml", False, False, False),
    (["-h"], {}, None, False, True, False),
    (["--help", "--version"], {}, None, False, True, True),
    (["--version", "a:b"], {"module": "a:b"}, None, False, False, True),
]


@pytest.mark.parametrize(
    ("argv", "values", "config_file", "check", "show_help", "show_version"),
    PARSES,
)
def test_command_line_grammar(
    argv: list[str],
    values: dict[str, object],
    config_file: str | None,
    check: bool,
    show_help: bool,
    show_version: bool,
) -> None:
    parsed = read_command_line(argv)
    assert dict(parsed.values) == values
    assert (parsed.config_file, parsed.check) == (config_file, check)
    assert (parsed.show_help, parsed.show_version) == (show_help, show_version)


USAGE_ERRORS = [
    # (argv, the whole message, as argparse worded it)
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--bogus=1", "a:b", "-q", "c:d"], "unrecognized arguments: --bogus=1 -q c:d"),
    (["a:b", "c:d", "--bogus"], "unrecognized arguments: c:d --bogus"),
    (["--", "a:b", "--threads"], "unrecognized arguments: --threads"),
    (["--processe=3", "a:b"], "unrecognized arguments: --processe=3"),
    (["--processe", "3", "a:b"], "unrecognized arguments: --processe a:b"),  # 3 is the module
    (["--no-processes"], "unrecognized arguments: --no-processes"),
    (["-x"], "unrecognized arguments: -x"),
    (["--processes"], "argument --processes/--workers/-p: expected one argument"),
    (["--processes", "--threads", "2"], "argument --processes/--workers/-p: expected one argument"),
    (["--processes", "--bogus"], "argument --processes/--workers/-p: expected one argument"),
    (["--processes", "--"], "argument --processes/--workers/-p: expected one argument"),
    (["-s"], "argument --socket/-s: expected one argument"),
    (["--config"], "argument --config: expected one argument"),
    (["--lazy-apps=yes"], "argument --lazy-apps/--no-lazy-apps: ignored explicit argument 'yes'"),
    (["--no-lazy-apps="], "argument --lazy-apps/--no-lazy-apps: ignored explicit argument ''"),
    (["--check=1"], "argument --check: ignored explicit argument '1'"),
    (["-hx"], "argument -h/--help: ignored explicit argument 'x'"),
    (["--help", "--bogus"], "unrecognized arguments: --bogus"),  # argparse's order, too
]


@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS)
def test_command_line_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_command_line(argv)
    assert caught.value.setting is None
    assert str(caught.value) == f"{message} (see 'sockactd --help')"


def test_an_option_where_a_value_belongs_is_an_error() -> None:
    with pytest.raises(ConfigError, match="argument --env: expected one argument"):
        read_command_line(["--env", "--x=1"])


def test_every_setting_flag_and_alias_is_understood() -> None:
    for setting in SETTINGS:
        for flag in (setting.flag, *setting.aliases):
            argv = [flag] if setting.kind is Kind.BOOL else [flag, "v"]
            expected: object = {Kind.BOOL: True, Kind.LIST: ["v"]}.get(setting.kind, "v")
            assert read_command_line(argv).values == {setting.name: expected}, flag


def test_loading_a_config_imports_no_slow_module() -> None:
    # argparse (with gettext, locale), typing, dataclasses and re cost milliseconds each and
    # a socket-activated client waits for them. -S: without site, whose .pth files import re.
    probe = (
        "import sys\n"
        "from sockactd.config.load import load_config\n"
        "load_config(['--processes', '3', '-s', '/run/a.sock', 'hello:app'], {})\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    loaded = set(run_python(probe, "-S").stdout.split())
    slow = ["argparse", "gettext", "locale", "typing", "dataclasses", "inspect", "re", "json",
            "tomllib", "pathlib"]  # fmt: skip
    assert [name for name in slow if name in loaded] == []
