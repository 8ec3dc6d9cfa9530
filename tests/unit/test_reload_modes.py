"""Every reload mode is complete: a strategy, a man-page entry, a control-protocol name, a
signal decision and a trigger decision -- and an unknown mode is an error at every edge.

The modes are declared once (sockactd/modes.py) and paired with their strategies once
(reload/registry.py); everything else looks them up. A new row that misses one of the
things a mode needs fails here, naming the mode.
"""

from __future__ import annotations

import json
import logging
import re
import signal
from pathlib import Path

import pytest

from sockactd.config.load import load_config
from sockactd.config.model import Config
from sockactd.config.settings import SETTINGS, Applies, Kind, by_name
from sockactd.control import ctl
from sockactd.control.protocol import Command, ControlRequest, decode_request, encode_request
from sockactd.errors import ConfigError, ControlError, ExitCode
from sockactd.master.handover import Handover
from sockactd.master.signals import SIGNAL_ACTIONS, Reload
from sockactd.modes import ReloadMode
from sockactd.osapi import MASTER_SIGNALS
from sockactd.reload.registry import STRATEGIES, strategy_for
from sockactd.triggers.base import rules_from_config

MAN = Path(__file__).resolve().parents[2] / "man"
MODES = ReloadMode.members()


def _roff_section(page: str, title: str) -> str:
    text = (MAN / page).read_text(encoding="utf-8").replace("\\-", "-")
    found = re.search(rf"^\.SH {re.escape(title)}\n(.*?)(?=^\.SH |\Z)", text, re.M | re.S)
    assert found is not None, f"{page} has no section {title}"
    return found.group(1)


def test_the_closed_set() -> None:
    assert ReloadMode.names() == ("standard", "workers", "chain")
    assert [ReloadMode.parse(name) for name in ReloadMode.names()] == MODES


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_a_mode_has_a_strategy(mode: ReloadMode) -> None:
    assert mode in STRATEGIES, "pair it with its strategy in reload/registry.py"
    first, second = strategy_for(mode, Config()), strategy_for(mode, Config())
    assert first is not second  # one fresh strategy per reload


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_a_mode_has_man_page_entries(mode: ReloadMode) -> None:
    assert mode.man.strip()
    # sockactd(8) from the row (scripts/gen-man), sockactd-reload(7) by hand
    assert re.search(rf"^\.B {mode.value}$", _roff_section("sockactd.8", "RELOAD MODES"), re.M)
    assert re.search(rf"^\.SS {mode.value}$", _roff_section("sockactd-reload.7", "MODES"), re.M)


# A `--mode` followed by its choices, as roff writes them by hand: `.RB [ \-\-mode` then
# `.BR standard | workers | chain ]`, `.BR \-\-mode " " standard | ...`, `[\-\-mode a|b|c]`.
_MODE_LIST = re.compile(r'--mode(?:\s|"|\.BR)*([a-z]+(?:\s*\|\s*[a-z]+)+)')


@pytest.mark.parametrize(("page", "count"), [("sockactctl.8", 2), ("sockactd-reload.7", 1)])
def test_the_hand_written_mode_lists_name_every_mode(page: str, count: int) -> None:
    text = (MAN / page).read_text(encoding="utf-8").replace("\\-", "-")
    lists = [re.split(r"\s*\|\s*", found) for found in _MODE_LIST.findall(text)]
    assert lists == [list(ReloadMode.names())] * count, f"{page}: each --mode list names every mode"


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_a_mode_has_a_control_protocol_name(mode: ReloadMode) -> None:
    line = f'{{"cmd": "reload", "mode": "{mode.value}"}}'.encode()
    assert decode_request(line).mode is mode
    request = ControlRequest(Command.RELOAD, mode)
    assert decode_request(encode_request(request)) == request
    args = ctl._parser("sockactctl").parse_args(["reload", "--mode", mode.value])
    assert ctl._request(args, None).mode is mode


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_a_mode_has_a_signal_decision(mode: ReloadMode) -> None:
    reloads = {signum.name: action for signum, action in SIGNAL_ACTIONS.items()}
    asked_by = [name for name, action in reloads.items() if action == Reload(mode)]
    if mode.signal is None:
        assert asked_by == []  # only SIGHUP's configured default can ask for it
        return
    assert asked_by == [mode.signal]
    assert signal.Signals[mode.signal] in MASTER_SIGNALS  # blocked while the master starts
    page = _roff_section("sockactd-reload.7", "TRIGGERS")
    assert re.search(rf"^{mode.signal}\|T\{{\n{mode.value}\n", page, re.M)


def test_no_two_modes_share_a_signal_or_a_trigger_setting() -> None:
    signals = [mode.signal for mode in MODES if mode.signal is not None]
    triggers = [mode.trigger for mode in MODES if mode.trigger is not None]
    assert len(set(signals)) == len(signals) and len(set(triggers)) == len(triggers)
    assert Reload(None) in SIGNAL_ACTIONS.values()  # SIGHUP: the configured mode


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_a_mode_has_a_trigger_decision(mode: ReloadMode) -> None:
    if mode.trigger is None:
        assert all(rule_mode is not mode for _, rule_mode in rules_from_config(Config()))
        return
    setting = by_name(mode.trigger)
    assert (setting.kind, setting.applies) == (Kind.LIST, Applies.STANDARD)
    config = Config(**{setting.attr: ["/srv/app/reload"]})
    assert rules_from_config(config) == [("/srv/app/reload", mode)]


def test_reload_mode_setting_takes_exactly_the_modes() -> None:
    setting = by_name("reload-mode")
    assert setting.kind is Kind.MODE and setting.default in MODES
    assert [s.name for s in SETTINGS if s.kind is Kind.MODE] == ["reload-mode"]
    for mode in MODES:
        assert load_config(["--reload-mode", mode.value, "app:application"], {}).reload_mode is mode


# --- an unknown mode is an error at each edge, with the right exit code or reply -------


def test_unknown_mode_in_the_configuration_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(["--reload-mode", "fast", "app:application"], {})
    assert caught.value.setting == "reload-mode"
    assert "expected one of standard, workers, chain, got 'fast'" in str(caught.value)


def test_unknown_mode_on_the_control_socket_is_refused() -> None:
    with pytest.raises(ControlError, match=r"unknown reload mode 'fast' \(expected one of"):
        decode_request(b'{"cmd": "reload", "mode": "fast"}')


def test_unknown_mode_on_sockactctl_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = ctl.main(["--control-socket", "/nonexistent", "reload", "--mode", "fast"])
    assert code == ExitCode.USAGE
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_unknown_mode_queued_by_the_previous_image_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = json.loads(Handover(1, (), None, (), (ReloadMode.CHAIN,), 0.0, {}).to_json())
    raw["queued"] = ["fast", "chain"]  # an image that knew a mode this one does not
    with caplog.at_level(logging.ERROR):
        assert Handover.from_json(json.dumps(raw)).queued == (ReloadMode.CHAIN,)
    assert "queued reload dropped across the standard reload: unknown reload mode 'fast'" in (
        caplog.text
    )


def test_parse_names_the_modes() -> None:
    with pytest.raises(ValueError, match=r"expected one of standard, workers, chain"):
        ReloadMode.parse("Chain")
