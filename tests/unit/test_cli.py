"""The sockactd command: exit statuses, one-line errors, --help/--version, --check, ctl.

Exit statuses are checked on a real `python -m sockactd` child, because that is
what systemd and operators see; the rest calls cli.main() in this process.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from sockactd import __version__
from sockactd.cli import main
from sockactd.config.settings import SETTINGS
from sockactd.errors import ExitCode
from tests.support import child_environ, require, run_python, sockactd_argv


def run_child(
    args: list[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sockactd_argv(*args),
        env=child_environ(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    code = exited.value.code
    assert isinstance(code, int)
    return code, out, err


@pytest.fixture(autouse=True)
def _no_sockactd_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() reads os.environ; a SOCKACTD_* variable of the developer must not leak in."""
    for name in [name for name in os.environ if name.startswith("SOCKACTD_")]:
        monkeypatch.delenv(name)


CHILD_FAILURES = [
    # (args, TOML file content or None, fragment of the single stderr line)
    (["--processes", "zero"], None, "setting 'processes' (from --processes): expected an integer"),
    (["--bogus", "hello:app"], None, "unrecognized arguments: --bogus"),
    (["--processes"], None, "expected one argument"),
    ([], "procesess = 4\n", "setting 'procesess'"),
    ([], "processes = [\n", "is not valid TOML"),
    ([], None, "no application to serve"),
]


@pytest.mark.parametrize(("args", "toml", "fragment"), CHILD_FAILURES)
def test_bad_configuration_exits_78_with_one_line(
    tmp_path: Path, args: list[str], toml: str | None, fragment: str
) -> None:
    if toml is not None:
        (tmp_path / "bad.toml").write_text(toml)
        args = [*args, "--config", str(tmp_path / "bad.toml"), "hello:app"]
    done = run_child(args)
    assert done.returncode == ExitCode.CONFIG_INVALID == 78
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("sockactd: error: ")
    assert fragment in lines[0]


def test_bad_environment_value_exits_78() -> None:
    done = run_child(["hello:app"], env={"SOCKACTD_PROCESSES": "four"})
    assert done.returncode == 78
    assert done.stderr == (
        "sockactd: error: setting 'processes' (from SOCKACTD_PROCESSES): "
        "expected an integer, got 'four'\n"
    )


def test_version_in_a_child() -> None:
    done = run_child(["--version"])
    assert (done.returncode, done.stdout, done.stderr) == (0, f"sockactd {__version__}\n", "")


def test_help_lists_every_setting_flag_and_section(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(["--help"], capsys)
    assert (code, err) == (0, "")
    flags = [flag for s in SETTINGS for flag in (s.flag, *s.aliases)]
    assert [flag for flag in flags if flag not in out] == []
    assert [s.section for s in SETTINGS if f"{s.section}:" not in out] == []
    assert "--no-lazy-apps" in out
    assert "SOCKACTD_PROCESSES" in out


def test_help_wins_over_a_bad_value(capsys: pytest.CaptureFixture[str]) -> None:
    # The values are not converted until after --help is handled
    code, out, _ = run_main(["--processes", "zero", "--help"], capsys)
    assert code == 0
    assert out.startswith("usage: sockactd")


IN_PROCESS_FAILURES = [
    (["--workers", "none", "hello:app"], "setting 'processes' (from --processes)"),
    (["-s"], "argument --socket/-s: expected one argument"),
    (["--lazy-apps=maybe", "hello:app"], "ignored explicit argument"),
    (["--reload-mode", "fast", "hello:app"], "setting 'reload-mode'"),
]


@pytest.mark.parametrize(("args", "fragment"), IN_PROCESS_FAILURES)
def test_configuration_errors_in_process(
    capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    code, out, err = run_main(args, capsys)
    assert (code, out) == (78, "")
    assert err.count("\n") == 1
    assert err.startswith("sockactd: error: ")
    assert fragment in err


# --- --check: needs sockactd.app (load_app) -------------------------------------

APPS = {
    "goodapp.py": """
        def application(environ, start_response):
            start_response("200 OK", [])
            return [b"ok"]
    """,
    "brokenapp.py": """
        raise RuntimeError("the database is on fire")
    """,
}


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    require(
        importlib.util.find_spec("sockactd.app") is not None,
        "sockactd.app (load_app) is not written yet",
    )
    for name, source in APPS.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    return tmp_path


def test_check_imports_the_app_and_exits_0(app_dir: Path) -> None:
    done = run_child(["--check", "goodapp:application"], env={"PYTHONPATH": str(app_dir)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "configuration OK, application goodapp:application imports\n"


def test_check_of_a_broken_app_exits_4_with_the_traceback(app_dir: Path) -> None:
    done = run_child(["--check", "brokenapp:application"], env={"PYTHONPATH": str(app_dir)})
    assert done.returncode == ExitCode.APP_IMPORT_FAILED == 70
    assert done.stdout == ""
    first, *rest = done.stderr.splitlines()
    assert first.startswith("sockactd: error: cannot import WSGI app 'brokenapp:application'")
    assert "RuntimeError: the database is on fire" in "\n".join(rest)


def test_check_applies_pythonpath_and_chdir_like_the_master(app_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = ["--check", "--chdir", str(elsewhere), "--pythonpath", str(app_dir), "goodapp"]
    done = run_child(args, cwd=tmp_path.parent)
    assert done.returncode == 0, done.stderr
    assert "application goodapp imports" in done.stdout


def test_check_of_a_missing_app_exits_4(app_dir: Path) -> None:
    done = run_child(["--check", "goodapp:application"])  # app_dir is not on the path
    assert done.returncode == ExitCode.APP_IMPORT_FAILED
    assert "ModuleNotFoundError" in done.stderr


def test_check_with_bad_config_exits_78_before_importing(app_dir: Path) -> None:
    done = run_child(["--check", "--threads", "0", "brokenapp:application"])
    assert done.returncode == 78
    assert "on fire" not in done.stderr


# --- ctl: needs sockactd.control.ctl --------------------------------------------------------


def test_ctl_is_delegated_to_the_control_command() -> None:
    require(
        importlib.util.find_spec("sockactd.control.ctl") is not None,
        "sockactd.control.ctl is not written yet",
    )
    done = run_child(["ctl", "--help"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: sockactd ctl")
    assert "reload" in done.stdout
    assert "status" in done.stdout


# --- start-up cost ----------------------------------------------------------------------------

# Modules that cost milliseconds each and are not needed to parse and validate a config.
HEAVY = [
    "logging", "tomllib", "socket", "selectors", "threading", "subprocess", "difflib",
    "sockactd.master", "sockactd.worker", "sockactd.control", "httptools", "pyinotify",
]  # fmt: skip


def test_parsing_a_command_line_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from sockactd.config.load import load_config\n"
        "load_config(['--processes', '3', 'hello:app'], {})\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    loaded = set(run_python(probe).stdout.split())
    assert [name for name in HEAVY if name in loaded] == []


def test_the_garbage_collector_runs_again_after_a_failed_start() -> None:
    # The command pauses the collector while it imports its start-up modules.
    import gc

    from sockactd.cli import _run

    assert _run(["--processes", "none", "app:app"]) == 78
    assert gc.isenabled()
