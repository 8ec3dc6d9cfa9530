"""app.py's `env` entries: applied over the started environment, and taken back."""

from __future__ import annotations

import os

import pytest

from sockactd import app


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "_overridden", {})
    monkeypatch.setenv("SITE_COLOR", "blue")
    monkeypatch.delenv("SITE_FLAG", raising=False)
    monkeypatch.setattr(os, "environ", os.environ.copy())  # our changes stay in this test


def test_entries_override_and_a_later_set_takes_them_back() -> None:
    app.apply_env(["SITE_COLOR=red", "SITE_FLAG=on"])
    assert (os.environ["SITE_COLOR"], os.environ["SITE_FLAG"]) == ("red", "on")
    started = app.started_environ()
    assert started["SITE_COLOR"] == "blue" and "SITE_FLAG" not in started
    app.apply_env(["SITE_FLAG=off"])
    assert (os.environ["SITE_COLOR"], os.environ["SITE_FLAG"]) == ("blue", "off")
    app.apply_env([])
    assert os.environ["SITE_COLOR"] == "blue" and "SITE_FLAG" not in os.environ
    assert app.started_environ() == dict(os.environ)


def test_a_value_with_equals_signs_is_kept_whole() -> None:
    app.apply_env(["DSN=postgres://u:p@h/db?sslmode=require"])
    assert os.environ["DSN"] == "postgres://u:p@h/db?sslmode=require"
