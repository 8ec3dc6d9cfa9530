"""`home` / `virtualenv`: which directories count as a virtualenv for this Python, and where
its site-packages land on sys.path. Real directories in tmp_path; no interpreter is started."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sockactd.config.load import load_config
from sockactd.errors import ConfigError
from sockactd.venv import VenvError, activate, site_packages

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"


def make_venv(root: Path, cfg: str | None) -> Path:
    site = root / "lib" / f"python{RUNNING}" / "site-packages"
    site.mkdir(parents=True)
    if cfg is not None:
        (root / "pyvenv.cfg").write_text(cfg)
    return site


@pytest.mark.parametrize(
    "cfg",
    [
        f"home = /usr/bin\nversion = {RUNNING}.1\n",  # python3 -m venv
        f"home = /usr/bin\nversion_info = {RUNNING}.4.final.0\n",  # virtualenv, uv
        f"Version = {RUNNING}\n",
    ],
)
def test_a_venv_for_this_python_gives_its_site_packages(tmp_path: Path, cfg: str) -> None:
    site = make_venv(tmp_path, cfg)
    assert site_packages(str(tmp_path)) == str(site)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (None, "is not a virtualenv (it has no pyvenv.cfg)"),
        ("home = /usr/bin\n", "names no Python version"),
        ("version = 3.9.18\n", "was made for Python 3.9.18 (its pyvenv.cfg), but sockactd runs on"),
        (f"version = 2.{RUNNING}\n", "was made for Python 2."),
    ],
)
def test_anything_else_is_refused_with_what_to_do(
    tmp_path: Path, cfg: str | None, message: str
) -> None:
    make_venv(tmp_path, cfg)
    with pytest.raises(VenvError) as raised:
        site_packages(str(tmp_path))
    assert message in str(raised.value)
    assert f"-m venv {tmp_path}" in str(raised.value)


def test_a_venv_without_site_packages_for_this_python(tmp_path: Path) -> None:
    (tmp_path / "pyvenv.cfg").write_text(f"version = {RUNNING}.0\n")
    with pytest.raises(VenvError, match=r"has no .*site-packages"):
        site_packages(str(tmp_path))


def test_the_setting_and_its_alias_key_are_checked_when_loading(tmp_path: Path) -> None:
    make_venv(tmp_path / "venv", "version = 3.9.18\n")
    config = tmp_path / "app.toml"
    config.write_text(f'module = "app"\nvirtualenv = "{tmp_path / "venv"}"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(["--config", str(config)], {})
    assert raised.value.setting == "home" and "Python 3.9.18" in str(raised.value)
    assert raised.value.exit_code == 78


def test_name_and_alias_in_one_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text('module = "app"\nprocesses = 2\nworkers = 3\n')
    with pytest.raises(ConfigError, match="given twice, as 'processes' and as 'workers'"):
        load_config(["--config", str(config)], {})


def test_activate_puts_the_venv_before_the_system_site_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_venv(tmp_path / "venv", f"version = {RUNNING}.0\n")
    src = tmp_path / "src"
    src.mkdir()
    (site / "editable.pth").write_text(f"{src}\n")
    stdlib, system = f"/usr/lib/python{RUNNING}", "/usr/lib/python3/dist-packages"
    monkeypatch.setattr(sys, "path", ["/app", stdlib, system])
    activate(str(tmp_path / "venv"))
    assert sys.path == ["/app", stdlib, str(site), str(src), system]
