"""Loading the configuration again at the start of a reload: what it installs, refuses, undoes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sockactd.config.load import load_config
from sockactd.config.model import Config
from sockactd.master.reconfig import Reconfigure, changed_settings, refusal
from sockactd.modes import ReloadMode

BASE = 'module = "app:application"\nprocesses = 2\n'


def _reconfigure(tmp_path: Path, installed: list[Config]) -> tuple[Reconfigure, Path, Config]:
    path = tmp_path / "site.toml"
    path.write_text(BASE)
    argv = ["--config", "site.toml"]  # relative: means start_dir, wherever the master is now
    reconfigure = Reconfigure(argv, {}, str(tmp_path), installed.append)
    current = load_config(["--config", str(path)], {})
    return reconfigure, path, current


@pytest.mark.parametrize(
    ("edit", "mode", "expected"),
    [
        ("access-log = true\n", "chain", ""),
        ("processes = 4\nharakiri = 30\n", "workers", ""),
        ('socket = ["/run/x.sock"]\n', "standard", ""),
        ('socket = ["/run/x.sock"]\n', "chain", "'socket'"),
        ('socket = ["/x.sock"]\ncontrol-socket = "/c"\n', "workers", "'socket', 'control-socket'"),
    ],
)
def test_refusal_names_the_settings_and_the_mode_that_applies_them(
    edit: str, mode: str, expected: str
) -> None:
    old = Config(module="app:application")
    new = Config(module="app:application", **_values(edit))
    problem = refusal(changed_settings(old, new), ReloadMode.parse(mode))
    if not expected:
        assert problem == ""
    else:
        assert expected in problem and "standard reload" in problem and mode in problem


def _values(edit: str) -> dict[str, object]:
    import tomllib

    return {key.replace("-", "_"): value for key, value in tomllib.loads(edit).items()}


def test_a_workers_reload_installs_the_new_config_and_an_abort_restores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed: list[Config] = []
    reconfigure, path, current = _reconfigure(tmp_path, installed)
    monkeypatch.chdir("/")  # the master may have chdir'ed; --config site.toml still resolves
    path.write_text(BASE + "access-log = true\n")
    config, problem = reconfigure.begin(current, ReloadMode.CHAIN)
    assert problem == "" and config.access_log and installed == [config]
    reconfigure.finish(ok=False)
    assert installed == [config, current]
    reconfigure.finish(ok=False)  # nothing left to undo
    assert len(installed) == 2


def test_a_finished_reload_keeps_the_new_config(tmp_path: Path) -> None:
    installed: list[Config] = []
    reconfigure, path, current = _reconfigure(tmp_path, installed)
    path.write_text(BASE.replace("processes = 2", "processes = 5"))
    config, _ = reconfigure.begin(current, ReloadMode.WORKERS)
    reconfigure.finish(ok=True)
    assert installed == [config] and config.processes == 5


def test_a_typo_refuses_with_did_you_mean_and_installs_nothing(tmp_path: Path) -> None:
    installed: list[Config] = []
    reconfigure, path, current = _reconfigure(tmp_path, installed)
    path.write_text(BASE + "procesess = 4\n")
    for mode in ReloadMode.members():
        config, problem = reconfigure.begin(current, mode)
        assert config is current and installed == []
        assert "did you mean 'processes'?" in problem, problem


def test_a_standard_reload_only_validates(tmp_path: Path) -> None:
    installed: list[Config] = []
    reconfigure, path, current = _reconfigure(tmp_path, installed)
    path.write_text(BASE + 'socket = ["/run/x.sock"]\ndrain-first = true\n')
    config, problem = reconfigure.begin(current, ReloadMode.STANDARD)
    assert problem == "" and config.drain_first and installed == []  # the new image applies it


def test_nothing_changed_installs_nothing(tmp_path: Path) -> None:
    installed: list[Config] = []
    reconfigure, _, current = _reconfigure(tmp_path, installed)
    assert reconfigure.begin(current, ReloadMode.CHAIN) == (current, "")
    assert installed == []
