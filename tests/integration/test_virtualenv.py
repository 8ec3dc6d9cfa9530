"""`home` (uWSGI's `virtualenv`): sockactd, running on its own interpreter, serves an app
whose dependencies live only in a virtualenv made with `python3 -m venv`.

The venv is real (made by the venv module of the interpreter sockactd runs on) and holds
two small packages as an install leaves them: one in site-packages, one found through a
.pth file (what `pip install -e` writes). A venv whose pyvenv.cfg names another Python
version is refused with exit 78 before any socket is bound.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from sockactd.errors import ExitCode
from tests.integration.server import NotifyListener, http_get, running
from tests.support import child_environ, free_port, sockactd_argv

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"

APP = """
import json
import greeting        # installed in the venv's site-packages
import editable_dep    # on sys.path through a .pth file in the venv

def application(environ, start_response):
    body = json.dumps({"greeting": greeting.TEXT, "from": greeting.__file__,
                       "editable": editable_dep.NAME}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
"""


def make_site(tmp_path: Path) -> tuple[Path, Path]:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{RUNNING}" / "site-packages"
    (site / "greeting").mkdir()
    (site / "greeting" / "__init__.py").write_text('TEXT = "hello from the venv"\n')
    src = tmp_path / "checkout" / "src"
    src.mkdir(parents=True)
    (src / "editable_dep.py").write_text('NAME = "editable"\n')
    (site / "__editable__.editable_dep.pth").write_text(f"{src}\n")
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "venv_app.py").write_text(APP)
    return venv, app_dir


def test_the_venv_python_sees_the_package_and_sockactd_alone_does_not(tmp_path: Path) -> None:
    venv, app_dir = make_site(tmp_path)
    code = "import greeting, editable_dep"
    assert subprocess.run([str(venv / "bin" / "python"), "-c", code]).returncode == 0
    done = subprocess.run(
        sockactd_argv("--check", "--pythonpath", str(app_dir), "venv_app"),
        env=child_environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == ExitCode.APP_IMPORT_FAILED, done
    assert "No module named 'greeting'" in done.stderr, done


def test_home_serves_an_app_whose_dependencies_live_in_the_venv(tmp_path: Path) -> None:
    venv, app_dir = make_site(tmp_path)
    port = free_port()
    config = tmp_path / "app.toml"
    config.write_text(
        f'http-socket = ["127.0.0.1:{port}"]\npythonpath = ["{app_dir}"]\n'
        f'module = "venv_app"\nvirtualenv = "{venv}"\nlazy-apps = true\n'
    )
    with running(tmp_path, "--config", str(config)) as srv:
        status, body = http_get(port, "/")
        assert status == 200, srv.log()
        answer = json.loads(body)
        assert answer["greeting"] == "hello from the venv"
        assert answer["from"].startswith(str(venv))
        assert answer["editable"] == "editable"
        result = srv.ctl("reload", "--mode", "standard", "--wait")  # the pre-flight too
        assert result.returncode == 0, result.stderr + srv.log()
        assert json.loads(http_get(port, "/")[1])["greeting"] == "hello from the venv"


def test_a_venv_of_another_python_version_exits_78_before_binding(tmp_path: Path) -> None:
    venv, app_dir = make_site(tmp_path)
    cfg = venv / "pyvenv.cfg"
    cfg.write_text(cfg.read_text().replace(f"version = {RUNNING}", "version = 3.9"))
    # The port is taken: had sockactd got as far as binding, it would report that instead.
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    unix = tmp_path / "app.sock"
    notify = NotifyListener(tmp_path / "notify.sock")
    try:
        env = child_environ({"NOTIFY_SOCKET": str(notify.path)})
        args = ["--http-socket", f"127.0.0.1:{port}", "--socket", str(unix), "--home", str(venv)]
        done = subprocess.run(
            sockactd_argv(*args, "--pythonpath", str(app_dir), "venv_app"),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 78, done
        line = done.stderr.strip()
        assert line.startswith("sockactd: error: setting 'home' (from --home)"), line
        assert "made for Python 3.9" in line and f"runs on Python {RUNNING}" in line
        assert f"-m venv {venv}" in line and "\n" not in line
        assert not unix.exists()
        assert notify.poll() == []  # never got as far as talking to systemd
    finally:
        notify.close()
        taken.close()
