"""The settings table and Config describe the same settings, in the same order; Config is frozen."""

from __future__ import annotations

import typing

import pytest

from sockactd.config.model import Config
from sockactd.config.settings import SETTINGS, Kind, Setting
from sockactd.modes import ReloadMode

NOT_SETTINGS = ("config_file",)
# What mypy sees: the annotations of Config's fields, evaluated
HINTS = typing.get_type_hints(Config)
PYTHON_TYPES: dict[Kind, object] = {
    Kind.STR: str,
    Kind.INT: int,
    Kind.FLOAT: float,
    Kind.BOOL: bool,
    Kind.LIST: list[str],
    Kind.CHOICE: str,
    Kind.MODE: ReloadMode,
}


def test_one_field_per_setting_in_table_order() -> None:
    expected = [*(s.attr for s in SETTINGS), *NOT_SETTINGS]
    assert list(Config.fields()) == expected
    assert list(HINTS) == expected


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_field_matches_setting(setting: Setting) -> None:
    expected = PYTHON_TYPES[setting.kind]
    if setting.default is None:
        expected = expected | None  # type: ignore[operator]
    assert HINTS[setting.attr] == expected
    default = getattr(Config(), setting.attr)
    assert default == setting.default
    assert setting.default is None or isinstance(default, typing.get_origin(expected) or expected)


def test_list_defaults_are_never_shared() -> None:
    first, second = Config(), Config()
    for name in first.fields():
        value = getattr(first, name)
        if isinstance(value, list):
            assert value is not getattr(second, name), name


def test_config_file_is_none_by_default() -> None:
    assert Config().config_file is None
    assert HINTS["config_file"] == str | None


def test_unknown_field_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Config has no field 'prcesses'"):
        Config(prcesses=3)


def test_fields_are_frozen() -> None:
    config = Config(processes=3)
    with pytest.raises(AttributeError, match="frozen"):
        config.processes = 4  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del config.processes
    assert config.processes == 3


def test_replace_changes_a_copy() -> None:
    config = Config(module="a:app", processes=3)
    changed = config.replace(max_requests=0, processes=5)
    assert (changed.processes, changed.module) == (5, "a:app")
    assert config.processes == 3
    assert config.replace() == config
    with pytest.raises(TypeError, match="no field 'bogus'"):
        config.replace(bogus=1)


EQUALITY = [
    (Config(), Config(), True),
    (Config(processes=3), Config(processes=3), True),
    (Config(processes=3), Config(processes=4), False),
    (Config(socket=["a"]), Config(socket=["a"]), True),
    (Config(config_file="/etc/x.toml"), Config(), False),
]


@pytest.mark.parametrize(("left", "right", "equal"), EQUALITY)
def test_equality_compares_every_field(left: Config, right: Config, equal: bool) -> None:
    assert (left == right) is equal
    assert (left != right) is not equal


def test_not_equal_to_other_types_and_unhashable() -> None:
    assert Config() != object()
    with pytest.raises(TypeError):
        hash(Config())


def test_repr_names_every_field() -> None:
    text = repr(Config(module="a:app"))
    assert text.startswith("Config(module='a:app', wsgi_file=None, ")
    assert all(f"{name}=" in text for name in Config.fields())


APP_TARGETS = [
    ({"module": "pkg.mod:app"}, "pkg.mod:app"),
    ({"wsgi_file": "/srv/app.py"}, "/srv/app.py:application"),
    ({"wsgi_file": "/srv/app.py", "callable": "make"}, "/srv/app.py:make"),
    ({}, "<none>"),
]


@pytest.mark.parametrize(("values", "target"), APP_TARGETS)
def test_app_target(values: dict[str, object], target: str) -> None:
    assert Config(**values).app_target == target


def test_setting_names_are_unique_flags() -> None:
    flags = [flag for s in SETTINGS for flag in (s.flag, *s.aliases)]
    assert len(flags) == len(set(flags))


def test_settings_do_not_take_the_names_of_general_options() -> None:
    # load.py's parser keeps --config, --check, --help, --version beside the settings
    general = {"config", "check", "help", "version"}
    assert [s.name for s in SETTINGS if s.name in general] == []
    assert [a for s in SETTINGS for a in s.aliases if a in ("-h", "--help", "--version")] == []


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_choice_defaults_are_choices(setting: Setting) -> None:
    assert (setting.kind is Kind.CHOICE) == bool(setting.choices)
    if setting.kind is Kind.CHOICE:
        assert setting.default in setting.choices


def test_settings_are_read_only() -> None:
    with pytest.raises(AttributeError, match="read-only"):
        SETTINGS[0].name = "other"  # type: ignore[misc]


SPELLINGS = [
    ("wsgi-file", "--wsgi-file", "SOCKACTD_WSGI_FILE", "wsgi_file"),
    ("touch-workers-reload", "--touch-workers-reload", "SOCKACTD_TOUCH_WORKERS_RELOAD",
     "touch_workers_reload"),
    ("processes", "--processes", "SOCKACTD_PROCESSES", "processes"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "flag", "env", "attr"), SPELLINGS)
def test_setting_spellings(name: str, flag: str, env: str, attr: str) -> None:
    setting = next(s for s in SETTINGS if s.name == name)
    assert (setting.flag, setting.env, setting.attr) == (flag, env, attr)
