"""Every reload loads the configuration file again, as an operator editing it expects.

The site runs from a TOML file given by a relative --config, with `chdir` set
(so the master's working directory is not where the path is relative to). Each
test edits the file the way an operator would and reloads with sockactctl, then
checks what a user sees: the new workers' behaviour, or the old generation
still answering and the reason on stderr.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from sockactd.errors import ExitCode
from tests.integration.server import Load, Server, get_json, http_get, running
from tests.support import ROOT, free_port, wait_until


def write_site(tmp_path: Path, extra: str = "") -> tuple[Path, str, int]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    shutil.copy(ROOT / "tests" / "apps" / "site_app.py", site / "site_app.py")
    port = free_port()
    text = (
        f'http-socket = ["127.0.0.1:{port}"]\nchdir = "{site}"\n'
        'module = "site_app:app"\nprocesses = 2\nlazy-apps = true\n' + extra
    )
    (tmp_path / "site.toml").write_text(text)
    return tmp_path / "site.toml", text, port


def generations(port: int, count: int = 10) -> set[int]:
    return {int(str(get_json(port)["generation"])) for _ in range(count)}


def access_lines(srv: Server, path: str) -> list[str]:
    return [line for line in srv.log().splitlines() if f'"GET {path} HTTP/1.1" 200' in line]


@pytest.mark.parametrize("mode", ["chain", "workers", "standard"])
def test_reload_applies_a_setting_new_workers_take(tmp_path: Path, mode: str) -> None:
    config, text, port = write_site(tmp_path)
    with running(tmp_path, "--config", "site.toml") as srv:
        assert http_get(port, "/before")[0] == 200
        config.write_text(text.replace("processes = 2", "processes = 3") + "access-log = true\n")
        result = srv.ctl("reload", "--mode", mode, "--wait")
        assert result.returncode == 0, result.stderr + srv.log()
        assert generations(port) == {2}
        assert http_get(port, "/after")[0] == 200
        wait_until(lambda: access_lines(srv, "/after"), 10, "the access log line")
        assert access_lines(srv, "/before") == []
        assert len(srv.status()["workers"]) == 3  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["chain", "workers", "standard"])
def test_a_typo_aborts_the_reload_and_the_old_generation_serves(tmp_path: Path, mode: str) -> None:
    config, text, port = write_site(tmp_path)
    with running(tmp_path, "--config", "site.toml") as srv:
        with Load(port, threads=2, limit=60) as load:
            load.wait_requests(20)
            typo = text.replace("processes = 2", "procesess = 4")
            config.write_text(typo + "access-log = true\n")
            result = srv.ctl("reload", "--mode", mode, "--wait")
            load.wait_requests(20)
        assert load.failures == {}, load.failures
        assert result.returncode == ExitCode.CONTROL_FAILED, result
        assert "setting 'procesess'" in result.stderr
        assert "did you mean 'processes'?" in result.stderr
        assert "generation 1 keeps serving" in result.stderr
        assert generations(port) == {1}
        status = srv.status()
        assert status["pid"] == srv.pid and status["phase"] == "serving"
        assert len(status["workers"]) == 2  # type: ignore[arg-type]
        assert access_lines(srv, "/") == []  # nothing of the rejected file was applied
        config.write_text(text + "access-log = true\n")  # fixed: the next reload goes through
        assert srv.ctl("reload", "--mode", mode, "--wait").returncode == 0
        assert generations(port) == {2}


def test_sighup_with_a_typo_keeps_serving_and_tells_systemd(tmp_path: Path) -> None:
    config, text, port = write_site(tmp_path)
    with running(tmp_path, "--config", "site.toml") as srv:
        assert srv.notify is not None
        before = len(srv.notify.poll())
        config.write_text(text + "harakri = 30\n")
        srv.signal(__import__("signal").SIGHUP)
        ready = srv.notify.wait_for("READY", "1", after=before)
        assert "did you mean 'harakiri'?" in ready["STATUS"], ready
        assert generations(port) == {1}


@pytest.mark.parametrize(
    ("edit", "setting"),
    [("listen = 64\n", "listen"), ('touch-reload = ["deploy-flag"]\n', "touch-reload")],
)
def test_a_setting_only_a_new_master_applies_refuses_chain_and_workers(
    tmp_path: Path, edit: str, setting: str
) -> None:
    config, text, port = write_site(tmp_path)
    with running(tmp_path, "--config", "site.toml") as srv:
        config.write_text(text + edit + "access-log = true\n")
        for mode in ("chain", "workers"):
            result = srv.ctl("reload", "--mode", mode, "--wait")
            assert result.returncode == ExitCode.CONTROL_FAILED, result
            assert f"'{setting}'" in result.stderr and "standard reload" in result.stderr
            assert f"a {mode} reload does not" in result.stderr
            assert f"sockactctl --control-socket {srv.control} reload --mode standard" in (
                result.stderr
            )
        assert generations(port) == {1}
        assert http_get(port, "/refused")[0] == 200
        result = srv.ctl("reload", "--mode", "standard", "--wait")
        assert result.returncode == 0, result.stderr + srv.log()
        assert srv.status()["pid"] == srv.pid
        assert generations(port) == {2}
        assert http_get(port, "/applied")[0] == 200
        wait_until(lambda: access_lines(srv, "/applied"), 10, "the access log line")
        assert access_lines(srv, "/refused") == []


def test_an_aborted_reload_puts_the_old_configuration_back(tmp_path: Path) -> None:
    config, text, port = write_site(tmp_path)
    site_app = tmp_path / "site" / "site_app.py"
    good = site_app.read_text()
    with running(tmp_path, "--config", "site.toml") as srv:
        old = srv.serving_pids()
        config.write_text(text + "access-log = true\n")
        site_app.write_text(good + "\nraise ImportError('no module named flask_pony')\n")
        result = srv.ctl("reload", "--mode", "chain", "--wait")
        assert result.returncode == ExitCode.CONTROL_FAILED, result
        assert "flask_pony" in result.stderr
        site_app.write_text(good)  # the code is fixed; the config edit stays unapplied
        victim = min(old)
        os.kill(victim, signal.SIGKILL)  # its replacement is forked with the master's config
        wait_until(lambda: len(srv.serving_pids() - old) == 1, 20, "the replacement worker")
        (replacement,) = srv.serving_pids() - old
        answered_by = set()
        deadline = time.monotonic() + 20
        while replacement not in answered_by and time.monotonic() < deadline:
            answered_by.add(int(str(get_json(port, "/after-abort")["pid"])))
        assert replacement in answered_by, "the replacement never answered"
        assert access_lines(srv, "/after-abort") == []


def getenv(port: int, key: str) -> set[object]:
    """What the workers answering on `port` see for `key` (a few requests, any worker)."""
    return {get_json(port, f"/getenv?{key}")["value"] for _ in range(10)}


@pytest.mark.parametrize("mode", ["chain", "workers", "standard"])
def test_an_env_entry_removed_from_the_file_is_gone_after_the_reload(
    tmp_path: Path, mode: str
) -> None:
    entries = 'env = ["SITE_COLOR=red", "SITE_FLAG=on"]\n'
    config, text, port = write_site(tmp_path, entries)
    # the service's own environment has SITE_COLOR: the file overrides it, then stops
    with running(tmp_path, "--config", "site.toml", env={"SITE_COLOR": "blue"}) as srv:
        assert getenv(port, "SITE_COLOR") == {"red"} and getenv(port, "SITE_FLAG") == {"on"}
        config.write_text(text.replace(entries, ""))
        result = srv.ctl("reload", "--mode", mode, "--wait")
        assert result.returncode == 0, result.stderr + srv.log()
        assert generations(port) == {2}
        assert getenv(port, "SITE_FLAG") == {None}
        assert getenv(port, "SITE_COLOR") == {"blue"}
