"""The man pages in man/ document everything the code defines, and stay generated.

Sources of truth: settings.SETTINGS (options, config keys, environment), errors.ExitCode,
master.signals.SIGNAL_ACTIONS, the sockactctl argument parser, and the project's
decisions (control commands, reload modes). Pages are compared as text after undoing
roff escapes, so a test failure names exactly what is missing where.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sockactd.config.settings import SETTINGS, Kind, Setting
from sockactd.errors import ExitCode
from sockactd.modes import ReloadMode
from tests.support import require

ROOT = Path(__file__).resolve().parents[2]
MAN = ROOT / "man"
PAGES = ("sockactd.8", "sockactctl.8", "sockactd.toml.5", "sockactd-reload.7")


def _load_gen_man() -> ModuleType:
    path = ROOT / "scripts" / "gen-man"
    loader = importlib.machinery.SourceFileLoader("gen_man", str(path))
    spec = importlib.util.spec_from_loader("gen_man", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_man"] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


GEN_MAN = _load_gen_man()


def text_of(page: str) -> str:
    """The page's words without roff: fonts dropped, \\- and \\e undone."""
    raw = (MAN / page).read_text(encoding="utf-8")
    raw = re.sub(r"\\f[BIRP]", "", raw)
    raw = raw.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")
    return raw


def section(page: str, title: str) -> str:
    """The text of one .SH section of `page`."""
    found = re.search(rf"^\.SH {re.escape(title)}\n(.*?)(?=^\.SH |\Z)", text_of(page), re.M | re.S)
    assert found is not None, f"{page} has no section {title}"
    return found.group(1)


@pytest.mark.parametrize("page", PAGES)
def test_page_exists(page: str) -> None:
    # tests/packaging checks that both packages ship every page
    assert (MAN / page).is_file()


def test_generated_sections_are_current() -> None:
    stale = [path.name for path, (now, fresh) in GEN_MAN.render_all().items() if now != fresh]
    assert stale == [], "run scripts/gen-man (make man)"


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_setting_is_in_daemon_page(setting: Setting) -> None:
    options = section("sockactd.8", "OPTIONS")
    for flag in (setting.flag, *setting.aliases):
        assert re.search(rf"^{re.escape(flag)}\b|, {re.escape(flag)}\b", options, re.M), flag
    if setting.kind is Kind.BOOL:
        assert f"--no-{setting.name}" in options
    assert setting.env in section("sockactd.8", "ENVIRONMENT")


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_setting_is_in_config_page(setting: Setting) -> None:
    assert re.search(
        rf"^{re.escape(setting.name)} = ", section("sockactd.toml.5", "SETTINGS"), re.M
    )


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_setting_doc_is_in_pages(setting: Setting) -> None:
    # The first words of the doc string: a changed doc must be regenerated into the pages.
    words = " ".join(GEN_MAN.roff(setting.doc).split()[:4])
    for page in ("sockactd.8", "sockactd.toml.5"):
        assert words in (MAN / page).read_text(encoding="utf-8"), page


def _ctl_parser() -> argparse.ArgumentParser:
    from sockactd.control import ctl

    parser: argparse.ArgumentParser = ctl._parser("sockactctl")
    return parser


HELP = ("-h", "--help")


def _ctl_words() -> list[str]:
    """Every subcommand and flag of sockactctl, read from its argument parser."""
    words: list[str] = []
    for action in _ctl_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words.append(name)
                words += [o for a in sub._actions for o in a.option_strings if o not in HELP]
                words += [c for a in sub._actions for c in (a.choices or ()) if a.option_strings]
        else:
            words += [o for o in action.option_strings if o not in HELP]
    return words


# From the project decisions: the control command's interface, whatever the parser says.
DECIDED_CTL_WORDS = ("--control-socket", "reload", "--mode", "standard", "workers", "chain",
                     "--wait", "--timeout", "status", "--json", "--version")  # fmt: skip


def test_ctl_parser_has_the_decided_interface() -> None:
    assert set(DECIDED_CTL_WORDS) <= set(_ctl_words())


@pytest.mark.parametrize("word", sorted(set(_ctl_words()) | set(DECIDED_CTL_WORDS)))
def test_ctl_word_is_in_ctl_page(word: str) -> None:
    word_re = rf"(?<![\w-]){re.escape(word)}(?![\w-])"
    assert re.search(word_re, section("sockactctl.8", "SYNOPSIS"))
    # Defined, not just mentioned: the word is in the head line of a .TP entry.
    entries = section("sockactctl.8", "OPTIONS") + section("sockactctl.8", "COMMANDS")
    assert re.search(rf"^\.TP\n\.B[IR]? [^\n]*{word_re}", entries, re.M)


def _master_signals() -> list[str]:
    from sockactd.master.signals import SIGNAL_ACTIONS

    return sorted(signum.name for signum in SIGNAL_ACTIONS)


@pytest.mark.parametrize("name", _master_signals())
def test_master_signal_is_in_daemon_page(name: str) -> None:
    assert re.search(rf"^{name}\|", section("sockactd.8", "SIGNALS"), re.M)


def test_signal_docs_match_the_signal_table() -> None:
    documented = sorted(doc.name for doc in GEN_MAN.SIGNALS if doc.target == "master")
    assert documented == _master_signals()


@pytest.mark.parametrize("name", ["SIGHUP", "SIGUSR1", "SIGUSR2"])
def test_reload_signal_is_in_reload_page(name: str) -> None:
    assert re.search(rf"^{name}\|", section("sockactd-reload.7", "TRIGGERS"), re.M)


@pytest.mark.parametrize("name", ExitCode.members())
def test_exit_code_is_documented(name: str) -> None:
    code = ExitCode.members()[name]
    who, _ = GEN_MAN.EXIT_DOCS[code]
    pages = ["sockactd.8", "sockactctl.8"] if who == "both" else [f"{who}.8"]
    for page in pages:
        assert re.search(rf"^{code}$", section(page, "EXIT STATUS"), re.M), page


@pytest.mark.parametrize("program", ["sockactd", "sockactctl"])
def test_every_status_a_page_lists_is_its_programs(program: str) -> None:
    # The reverse of the test above, hand-written entries after the generated ones included
    # (sockactctl.8 listed "2: Usage error" beside the generated 64 until this test).
    listed = re.findall(r"^\.TP\n(?:\.B )?(\d+)$", section(f"{program}.8", "EXIT STATUS"), re.M)
    own = {code for code, (who, _) in GEN_MAN.EXIT_DOCS.items() if who in ("both", program)}
    assert sorted(int(code) for code in listed) == sorted(own)


@pytest.mark.parametrize("mode", ["standard", "workers", "chain"])
def test_reload_mode_is_explained(mode: str) -> None:
    assert mode in ReloadMode.names()
    assert re.search(rf"^\.SS {mode}$", section("sockactd-reload.7", "MODES"), re.M)
    assert re.search(rf"^\.B {mode}$", section("sockactd.8", "RELOAD MODES"), re.M)


@pytest.mark.parametrize(
    "phrase",
    ["RELOADING=1", "MONOTONIC_USEC", "READY=1", "EXTEND_TIMEOUT_USEC", "ready-timeout",
     "drain-first", "lazy-apps", "queued", "/var/lib/sockactd/INSTANCE/reload",
     "/var/lib/sockactd/INSTANCE/workers-reload", "/var/lib/sockactd/INSTANCE/chain-reload"],
)  # fmt: skip
def test_reload_page_covers(phrase: str) -> None:
    assert phrase in text_of("sockactd-reload.7")


@pytest.mark.parametrize(
    "variable",
    ["NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC",
     "WATCHDOG_PID", "RUNTIME_DIRECTORY", "JOURNAL_STREAM", "SOCKACTD_CONFIG"],
)  # fmt: skip
def test_environment_variable_is_documented(variable: str) -> None:
    assert variable in section("sockactd.8", "ENVIRONMENT")


def test_mandoc_lint_is_clean() -> None:
    require(shutil.which("mandoc") is not None, "needs mandoc")
    pages = [str(MAN / page) for page in PAGES]
    done = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", *pages],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
