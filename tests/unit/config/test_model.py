"""The settings table and the Config dataclass describe the same settings, in the same order."""

from __future__ import annotations

import dataclasses

import pytest

from sockactd.config.model import Config
from sockactd.config.settings import SETTINGS, Kind, Setting

NOT_SETTINGS = {"config_file"}
FIELDS = [f for f in dataclasses.fields(Config) if f.name not in NOT_SETTINGS]
PYTHON_TYPES = {
    Kind.STR: "str",
    Kind.INT: "int",
    Kind.FLOAT: "float",
    Kind.BOOL: "bool",
    Kind.LIST: "list[str]",
    Kind.CHOICE: "str",
}


def _default(field: dataclasses.Field[object]) -> object:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def test_one_field_per_setting_in_table_order() -> None:
    assert [f.name for f in FIELDS] == [s.attr for s in SETTINGS]


# zip stops at the shorter one; the test above catches a missing field or setting
PAIRS = list(zip(SETTINGS, FIELDS, strict=False))


@pytest.mark.parametrize(("setting", "field"), PAIRS, ids=[s.name for s, _ in PAIRS])
def test_field_matches_setting(setting: Setting, field: dataclasses.Field[object]) -> None:
    assert field.name == setting.attr
    assert _default(field) == setting.default
    optional = " | None" if setting.default is None else ""
    assert field.type == PYTHON_TYPES[setting.kind] + optional


def test_setting_names_are_unique_flags() -> None:
    flags = [flag for s in SETTINGS for flag in (s.flag, *s.aliases)]
    assert len(flags) == len(set(flags))


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_choice_defaults_are_choices(setting: Setting) -> None:
    assert (setting.kind is Kind.CHOICE) == bool(setting.choices)
    if setting.kind is Kind.CHOICE:
        assert setting.default in setting.choices
