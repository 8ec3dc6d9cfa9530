"""py-autoreload settings: needs lazy-apps, refused under systemd unless allowed, `reload`."""

from __future__ import annotations

import pytest

from sockactd.config.load import load_config
from sockactd.errors import ConfigError

APP = "app:application"


def test_off_by_default() -> None:
    assert load_config([APP], {}).autoreload_seconds == 0.0


@pytest.mark.parametrize(
    ("argv", "seconds"),
    [
        (["--py-autoreload", "2"], 2.0),
        (["--py-autoreload", "0.5"], 0.5),
        (["--reload"], 1.0),  # gunicorn's --reload: uWSGI's py-autoreload = 1
        (["--reload", "--py-autoreload", "3"], 3.0),
    ],
)
def test_interval(argv: list[str], seconds: float) -> None:
    assert load_config(["--lazy-apps", *argv, APP], {}).autoreload_seconds == seconds


@pytest.mark.parametrize("argv", [["--py-autoreload", "1"], ["--reload"]])
def test_needs_lazy_apps(argv: list[str]) -> None:
    with pytest.raises(ConfigError, match="needs lazy-apps") as caught:
        load_config([*argv, APP], {})
    assert caught.value.exit_code == 78


def test_refused_under_systemd_unless_allowed() -> None:
    argv = ["--lazy-apps", "--py-autoreload", "1", APP]
    with pytest.raises(ConfigError, match=r"refused under systemd.*autoreload-under-systemd"):
        load_config(argv, {"INVOCATION_ID": "0123abcd"})
    allowed = load_config(["--autoreload-under-systemd", *argv], {"INVOCATION_ID": "0123abcd"})
    assert allowed.autoreload_seconds == 1.0
    # off, nothing is refused under systemd
    assert load_config([APP], {"INVOCATION_ID": "0123abcd"}).autoreload_seconds == 0.0


def test_negative_interval_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 0"):
        load_config(["--lazy-apps", "--py-autoreload", "-1", APP], {})


def test_engine_is_a_closed_set() -> None:
    with pytest.raises(ConfigError, match="reload-engine"):
        load_config(["--lazy-apps", "--reload", "--reload-engine", "kqueue", APP], {})
