"""py-autoreload with real files and a real server: a saved file reloads, broken code never serves.

The app lives in a temporary directory; each test edits its files the way a
developer's editor does (write in place, save by rename, many saves at once) and
checks what the developer would see: the new code answering, no failed request
under load, the old code serving and one traceback while a save does not import.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.server import Load, Server, get_json, http_get
from tests.support import child_environ, free_port, wait_until

APP = """
import json
import os

VERSION = "v1"
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "page.tmpl")) as page:
    TEMPLATE = page.read().strip()


def app(environ, start_response):
    data = {
        "pid": os.getpid(),
        "generation": int(os.environ.get("SOCKACTD_GENERATION", "0")),
        "version": VERSION,
        "template": TEMPLATE,
    }
    if environ.get("PATH_INFO") == "/lazy":
        import devlazy  # imported by the first request that needs it

        data["lazy"] = devlazy.VALUE
    body = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


def make_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "devapp.py").write_text(APP)
    (site / "page.tmpl").write_text("page one\n")
    (site / "devlazy.py").write_text('VALUE = "lazy one"\n')
    return site


def start(tmp_path: Path, *extra: str, processes: int = 2) -> tuple[Server, int, Path]:
    site = make_site(tmp_path)
    port = free_port()
    args = ["--http-socket", f"127.0.0.1:{port}", "--pythonpath", str(site), "--processes",
            str(processes), "--lazy-apps", *extra, "devapp:app"]  # fmt: skip
    server = Server(tmp_path, args, env={"INVOCATION_ID": ""})
    return server.start(), port, site


def set_version(site: Path, version: str) -> None:
    """Write devapp.py in place, as most editors' plain save does."""
    path = site / "devapp.py"
    path.write_text(re.sub(r'VERSION = "[^"]*"', f'VERSION = "{version}"', path.read_text()))


def wait_version(port: int, version: str, timeout: float = 15.0, path: str = "/") -> None:
    def serves() -> bool:
        return all(json.loads(http_get(port, path)[1])["version"] == version for _ in range(4))

    wait_until(serves, timeout, f"version {version} served")


def reloads_started(server: Server) -> int:
    return server.log().count("reload started")


def test_an_edited_module_serves_under_load_without_a_failed_request(tmp_path: Path) -> None:
    server, port, site = start(tmp_path, "--py-autoreload", "1")
    try:
        with Load(port, threads=4, limit=60) as load:
            load.wait_requests(50)
            set_version(site, "v2")
            wait_version(port, "v2")
            load.wait_requests(50)
        assert load.failures == {}, load.failures
        assert load.versions["v2"] > 0
        assert reloads_started(server) == 1, server.log()
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["chain", "workers", "standard"])
def test_a_save_that_does_not_import_keeps_the_old_code_then_the_fix_reloads(
    tmp_path: Path, mode: str
) -> None:
    server, port, site = start(tmp_path, "--py-autoreload", "1", "--reload-mode", mode)
    try:
        app = site / "devapp.py"
        good = app.read_text()
        with Load(port, threads=2, limit=60) as load:
            app.write_text(good.replace('VERSION = "v1"', 'VERSION = "v2"\nif True\n'))
            wait_until(lambda: "reload aborted" in server.log(), 15, "the reload aborts")
            load.wait_requests(20)
            assert {get_json(port)["version"] for _ in range(10)} == {"v1"}
            app.write_text(good.replace('VERSION = "v1"', 'VERSION = "v3"'))
            wait_version(port, "v3")
        assert load.failures == {}, load.failures
        log = server.log()
        assert log.count("Traceback (most recent call last)") == 1, log
        # the file and line come first, before the traceback
        headline = log.split("Traceback (most recent call last)", 1)[0].splitlines()[-1]
        assert headline.startswith(f"{app}, line 6: SyntaxError"), log
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["chain", "workers", "standard"])
def test_fixing_a_new_module_that_did_not_import_reloads(tmp_path: Path, mode: str) -> None:
    # Only the failed import's traceback names the new module: a new worker's in chain and
    # workers mode, the pre-flight check's (`sockactd --check`) in standard mode.
    server, port, site = start(tmp_path, "--py-autoreload", "1", "--reload-mode", mode)
    try:
        helper = site / "devhelper.py"
        helper.write_text('NAME = "helper"\nif True\n')  # new, and broken
        app = site / "devapp.py"
        source = app.read_text()
        app.write_text(source.replace('VERSION = "v1"', "from devhelper import NAME as VERSION"))
        wait_until(lambda: "reload aborted" in server.log(), 15, "the reload aborts")
        assert {get_json(port)["version"] for _ in range(10)} == {"v1"}
        log = server.log()
        assert log.count("Traceback (most recent call last)") == 1, log
        assert f'File "{helper}", line 2' in log, log
        helper.write_text('NAME = "fixed helper"\n')  # only the helper is saved again
        wait_version(port, "fixed helper")
    finally:
        server.stop()


def test_a_module_imported_lazily_by_a_request_is_watched_from_then_on(tmp_path: Path) -> None:
    server, port, site = start(tmp_path, "--py-autoreload", "1", "--log-level", "debug",
                               processes=1)  # fmt: skip
    try:
        assert "devlazy.py" not in server.log()
        assert get_json(port, "/lazy")["lazy"] == "lazy one"
        watching = f"py-autoreload: watching {site / 'devlazy.py'}"
        wait_until(lambda: watching in server.log(), 10, "devlazy.py watched")
        (site / "devlazy.py").write_text('VALUE = "lazy two"\n')
        wait_until(lambda: get_json(port, "/lazy")["lazy"] == "lazy two", 15, "lazy two")
        assert reloads_started(server) == 1, server.log()
    finally:
        server.stop()


def test_a_reload_extra_file_reloads(tmp_path: Path) -> None:
    site_dir = tmp_path / "site"
    server, port, site = start(
        tmp_path, "--py-autoreload", "1", "--reload-extra-file", str(site_dir / "page.tmpl")
    )
    try:
        (site / "page.tmpl").write_text("page two\n")
        wait_until(lambda: get_json(port)["template"] == "page two", 15, "page two served")
    finally:
        server.stop()


def test_a_hundred_saves_in_a_second_are_one_reload(tmp_path: Path) -> None:
    server, port, site = start(tmp_path, "--py-autoreload", "1")
    try:
        for n in range(100):  # a save every 10 ms, for a second
            set_version(site, f"v{n + 2}")
            time.sleep(0.01)
        wait_version(port, "v101")
        wait_until(lambda: "done: generation 2 serves" in server.log(), 15, "the reload done")
        assert reloads_started(server) == 1, server.log()
        assert get_json(port)["generation"] == 2
    finally:
        server.stop()


def test_a_save_by_rename_reloads(tmp_path: Path) -> None:
    server, port, site = start(tmp_path, "--py-autoreload", "1")
    try:
        app = site / "devapp.py"
        # vim's `backupcopy=no`: the old file becomes the backup, a new one is written
        os.rename(app, site / "devapp.py~")
        (site / "devapp.py").write_text((site / "devapp.py~").read_text().replace("v1", "v2"))
        wait_version(port, "v2")
        # an IDE's atomic save: a temporary file renamed over the module
        tmp = site / ".devapp.py.tmp"
        tmp.write_text(app.read_text().replace("v2", "v3"))
        os.replace(tmp, app)
        wait_version(port, "v3")
        assert reloads_started(server) == 2, server.log()
    finally:
        server.stop()


def test_the_polling_path_reloads(tmp_path: Path) -> None:
    server, port, site = start(tmp_path, "--py-autoreload", "1", "--reload-engine", "poll")
    try:
        assert "stat scan every 1s" in server.log()
        set_version(site, "v2")
        wait_version(port, "v2")
        (site / "devlazy.py").write_text('VALUE = "never imported"\n')  # not a module it uses
        set_version(site, "v3")
        wait_version(port, "v3")
        assert reloads_started(server) == 2, server.log()
    finally:
        server.stop()


def test_without_lazy_apps_it_exits_78_at_start_up(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "sockactd", "--http-socket", "127.0.0.1:0", "--pythonpath",
         str(site), "--py-autoreload", "1", "devapp:app"],
        env=child_environ({"INVOCATION_ID": ""}), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 78, done
    assert "'py-autoreload'" in done.stderr and "needs lazy-apps" in done.stderr


def test_under_systemd_it_is_refused_unless_allowed_then_warned_about(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    argv = [sys.executable, "-m", "sockactd", "--http-socket", "127.0.0.1:0", "--pythonpath",
            str(site), "--lazy-apps", "--reload", "devapp:app"]  # fmt: skip
    env = child_environ({"INVOCATION_ID": "5f0c1e4a9b"})
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 78, done
    assert "refused under systemd" in done.stderr
    server = Server(tmp_path, ["--pythonpath", str(site), "--http-socket", "127.0.0.1:0",
                               "--lazy-apps", "--reload", "--autoreload-under-systemd",
                               "devapp:app"], env={"INVOCATION_ID": "5f0c1e4a9b"})  # fmt: skip
    try:
        server.start()
        assert "WARNING" in server.log() and "py-autoreload is on under systemd" in server.log()
    finally:
        server.stop()
