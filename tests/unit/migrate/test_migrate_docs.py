"""docs/migrating-from-uwsgi.md and the converter cannot disagree.

The page's option table is generated from sockactd.migrate.rules (scripts/gen-man
writes it); these tests read the page as a user would and ask the converter about
every option it names, and check that each sockactd setting uWSGI knows by some
name is migrated, so a setting added later shows up in both without a new row.
"""

from __future__ import annotations

import re

import pytest

from sockactd.config.settings import SETTINGS
from sockactd.migrate.render import docs_table
from sockactd.migrate.rules import OVERRIDES, Fate, rule_for
from sockactd.migrate.uwsgi_options import UWSGI_OPTIONS
from tests.support import ROOT

PAGE = ROOT / "docs" / "migrating-from-uwsgi.md"
REGION = re.compile(
    r"<!-- BEGIN GENERATED uwsgi-options .*?-->\n(.*?)<!-- END GENERATED uwsgi-options -->", re.S
)
SECTION_FATE = {
    "Becomes a setting": Fate.SETTING,
    "Becomes a directive of `sockactd@APP.socket`": Fate.SOCKET,
    "Becomes a directive of `sockactd@APP.service`": Fate.SERVICE,
    "Not needed": Fate.DROPPED,
    "No equivalent yet": Fate.NOT_YET,
    "No equivalent (": Fate.NONE,
}


def page_rows() -> list[tuple[Fate, str, str]]:
    """(section's fate, uWSGI name as written, sockactd column) for every table row."""
    found = REGION.search(PAGE.read_text())
    assert found is not None, "docs/migrating-from-uwsgi.md lost its generated region"
    rows, fate = [], None
    for line in found.group(1).splitlines():
        if line.startswith("### "):
            fate = next(f for head, f in SECTION_FATE.items() if line[4:].startswith(head))
        elif line.startswith("| `"):
            assert fate is not None
            first, does = line.split(" | ")[:2]
            rows += [(fate, name, does) for name in re.findall(r"`([^`]+)`", first)]
    return rows


def test_the_page_holds_the_converters_table() -> None:
    found = REGION.search(PAGE.read_text())
    assert found is not None
    assert found.group(1) == "\n".join(docs_table()) + "\n", "run scripts/gen-man"


@pytest.mark.parametrize(("fate", "name", "does"), page_rows(), ids=lambda v: str(v)[:30])
def test_every_option_on_the_page_is_converted_as_it_says(fate: Fate, name: str, does: str) -> None:
    key = name.rstrip("*") + ("x" if name.endswith("*") else "")
    rule = rule_for(key)
    assert rule is not None and rule.fate is fate, (name, rule)
    if fate is Fate.SETTING and rule.handler is None:
        assert does == f"`{rule.does}`"


def test_every_setting_with_a_uwsgi_name_is_migrated_to_itself() -> None:
    overridden = {name for rule in OVERRIDES for name in rule.names}
    on_page = {(name, does) for fate, name, does in page_rows() if fate is Fate.SETTING}
    for setting in SETTINGS:
        if setting.name in UWSGI_OPTIONS and setting.name not in overridden:
            rule = rule_for(setting.name)
            assert rule is not None and (rule.fate, rule.does) == (Fate.SETTING, setting.name)
            assert (setting.name, f"`{setting.name}`") in on_page


def test_the_page_leads_with_the_command() -> None:
    text = PAGE.read_text()
    first_block = text.split("```")[1]
    assert "sockactd migrate-uwsgi" in first_block
    assert text.index("sockactd migrate-uwsgi") < text.index("## ")
