"""What each uWSGI option becomes: a table of ini snippets, each mapping, each drop.

Each case is a one-line `[uwsgi]` section plus `module = app:app` (so the site is
complete), converted by the real subcommand; the test reads the files and the
report as an operator would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sockactd.config.load import load_config
from sockactd.errors import ExitCode
from sockactd.migrate.command import main
from sockactd.migrate.debian import SHIPPED_INHERITED, debian_site
from tests.support import ROOT, child_environ, require
from tests.unit.test_units import stage_units, verify

TOML = "etc/sockactd/app.toml"
SOCKET = "etc/systemd/system/sockactd@app.socket.d/uwsgi.conf"
SERVICE = "etc/systemd/system/sockactd@app.service.d/uwsgi.conf"


def migrate(tmp_path: Path, body: str, *args: str) -> tuple[int, dict[str, str], str]:
    """Run `migrate-uwsgi app.ini --out DIR`; (exit status, {relative path: text}, report)."""
    ini = tmp_path / "app.ini"
    ini.write_text(f"[uwsgi]\n{body}\n")
    out = tmp_path / "out"
    status = main([str(ini), "--out", str(out), *args])
    files = {
        str(path.relative_to(out)): path.read_text() for path in out.rglob("*") if path.is_file()
    }
    return status, files, files.get("migrate-uwsgi-report.txt", "")


MAPPED = [
    ("module = shop.wsgi:application", TOML, 'module = "shop.wsgi:application"'),
    ("wsgi = shop.wsgi", TOML, 'module = "shop.wsgi"'),
    ("pythonpath = /a\npp = /b", TOML, 'pythonpath = ["/a", "/b"]'),
    ("chdir = /srv/shop", TOML, 'chdir = "/srv/shop"'),
    ("processes = 4", TOML, "processes = 4"),
    ("workers = 3", TOML, "processes = 3"),
    ("threads = 2", TOML, "threads = 2"),
    ("harakiri = 30", TOML, "harakiri = 30"),
    ("max-requests = 5000", TOML, "max-requests = 5000"),
    ("reload-on-rss = 300", TOML, "reload-on-rss = 300"),
    ("max-requests = 1000\nmax-requests-delta = 50", TOML, "max-requests-delta = 50"),
    ("stats = 127.0.0.1:9191", TOML, 'stats = "127.0.0.1:9191"'),
    ("stats-server = /run/app/stats.sock", TOML, 'stats = "/run/app/stats.sock"'),
    ("evil-reload-on-rss = 400", TOML, "evil-reload-on-rss = 400"),
    ("max-worker-lifetime = 3600", TOML, "max-worker-lifetime = 3600"),
    ("max-worker-lifetime-delta = 30", TOML, "max-worker-lifetime-delta = 30"),
    ("lazy-apps = true", TOML, "lazy-apps = true"),
    ("lazy-apps", TOML, "lazy-apps = true"),
    ("lazy-apps = off", TOML, "lazy-apps = false"),
    ("buffer-size = 32768", TOML, "buffer-size = 32768"),
    ("limit-post = 1048576", TOML, "limit-post = 1048576"),
    ("socket-timeout = 10", TOML, "socket-timeout = 10"),
    ("reload-mercy = 15", TOML, "reload-mercy = 15"),
    ("worker-reload-mercy = 20", TOML, "worker-reload-mercy = 20"),
    ("touch-reload = /srv/shop/reload", TOML, 'touch-reload = ["/srv/shop/reload"]'),
    ("touch-chain-reload = /srv/c", TOML, 'touch-chain-reload = ["/srv/c"]'),
    ("env = A=1\nenv = B=x y", TOML, 'env = ["A=1", "B=x y"]'),
    ("env = PYTHONHASHSEED=0", SERVICE, 'Environment="PYTHONHASHSEED=0"'),
    ("env = LANG=C.UTF-8", SERVICE, 'Environment="LANG=C.UTF-8"'),
    ("socket = /run/uwsgi/app.sock", SOCKET,
     "ListenStream=\nFileDescriptorName=uwsgi\nListenStream=/run/uwsgi/app.sock\n"),
    ("uwsgi-socket = 127.0.0.1:3031", SOCKET, "ListenStream=127.0.0.1:3031\n"),
    ("socket = :3031", SOCKET, "ListenStream=0.0.0.0:3031\n"),
    ("socket = localhost:3031", SOCKET, "ListenStream=127.0.0.1:3031\n"),
    ("http-socket = [::1]:8000", SOCKET, "FileDescriptorName=http\nListenStream=[::1]:8000\n"),
    ("http = :8000", SOCKET, "FileDescriptorName=http\nListenStream=0.0.0.0:8000\n"),
    ("socket = /run/a.sock\nsocket = /run/b.sock", SOCKET,
     "ListenStream=/run/a.sock\nListenStream=/run/b.sock\n"),
    ("chmod-socket = 660", SOCKET, "SocketMode=0660"),
    ("chmod-socket", SOCKET, "SocketMode=0666"),
    ("chown-socket = www-data:nginx", SOCKET, "SocketUser=www-data\nSocketGroup=nginx"),
    ("chown-socket = www-data", SOCKET, "SocketUser=www-data\n"),
    ("listen = 1024", SOCKET, "Backlog=1024"),
    ("reuse-port = true", SOCKET, "ReusePort=yes"),
    ("tcp-nodelay", SOCKET, "NoDelay=yes"),
    ("uid = www-data", SERVICE, "DynamicUser=no\nUser=www-data"),
    ("gid = www-data", SERVICE, "Group=www-data"),
    ("limit-as = 512", SERVICE, "LimitAS=512M"),
    ("max-fd = 4096", SERVICE, "LimitNOFILE=4096"),
    ("umask = 022", SERVICE, "UMask=0022"),
    ("chdir = /home/shop/site", SERVICE, "ProtectHome=read-only"),
    ("chdir = /srv/shop", SERVICE, "#ReadWritePaths=/srv/shop\n"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "file", "expected"), MAPPED, ids=[m[0] for m in MAPPED])
def test_mapped(line: str, file: str, expected: str, tmp_path: Path) -> None:
    body = line if line.startswith(("module", "wsgi =")) else f"module = app:app\n{line}"
    status, files, report = migrate(tmp_path, body)
    assert status == 0, report
    assert expected in files[file]
    assert "NOT MAPPED" not in report and "\n  - " in report


DROPPED = [
    ("master = true", "sockactd always runs a master"),
    ("vacuum = true", "systemd owns the socket file"),
    ("die-on-term = true", "SIGTERM is a graceful stop"),
    ("enable-threads = true", "threads are always enabled"),
    ("single-interpreter = true", "one interpreter per process"),
    ("need-app = true", "never serves"),
    ("no-orphans = true", "workers die with their master"),
    ("pidfile = /run/uwsgi/app.pid", "systemd knows the PID"),
    ("daemonize = /var/log/uwsgi/app.log", "systemd runs the service"),
    ("logto = /var/log/uwsgi/app.log", "journalctl -u sockactd@app"),
    ("log-maxsize = 1000000", "journald"),
    ("emperor = /etc/uwsgi/vassals", "one `sockactd@APP` instance per application"),
    ("plugins = python3", "nothing to load"),
    ("master-fifo = /run/uwsgi/app.fifo", "sockactctl reload --mode"),
    ("thunder-lock = true", "one connection per wake-up"),
    ("post-buffering = 8192", "nginx buffers request bodies"),
    ("project = shop", "not a uWSGI option (uWSGI ignores it): a placeholder variable"),
]


@pytest.mark.parametrize(("line", "why"), DROPPED, ids=[d[0] for d in DROPPED])
def test_dropped_with_its_reason(line: str, why: str, tmp_path: Path) -> None:
    status, _, report = migrate(tmp_path, f"module = app:app\n{line}")
    (row,) = [row for row in report.splitlines() if row.strip().startswith("app.ini:3")]
    assert "dropped:" in row and why.replace("APP", "app") in row
    assert status == 0


UNMAPPED = [
    ("static-map = /static=/srv/static", "no equivalent: serving static files belongs"),
    ("route = ^/old redirect:/new", "no equivalent: routing belongs to the front-end"),
    ("home = /srv/no-venv-here", "home: /srv/no-venv-here is not a virtualenv"),
    ("mount = /app=app.py", "one application per instance"),
    ("cheaper-algo = busyness", "a fixed number of processes"),
    ("spooler = /var/spool/app", "services beyond serving requests"),
    ("plugins = python3,php", "plugin php: sockactd serves Python WSGI only"),
    ("socket = example.com:80", "host name 'example.com'"),
    ("socket = app.sock", "relative path 'app.sock': uWSGI binds it in its working directory"),
    ("processes = many", "processes: expected an integer"),
    ("buffer-size = 512", "buffer-size: must be at least 1024"),
    ("processes = %k", "cannot be decided from the file: %k (the CPU count)"),
    ("so-send-timeout = 5", "no rule for this uWSGI option yet"),
]


@pytest.mark.parametrize(("line", "why"), UNMAPPED, ids=[u[0] for u in UNMAPPED])
def test_unmapped_is_named_and_fails(line: str, why: str, tmp_path: Path) -> None:
    status, files, report = migrate(tmp_path, f"module = app:app\n{line}")
    key = line.split(" = ")[0]
    (row,) = [row for row in report.splitlines() if row.strip().startswith("app.ini:3")]
    assert "NOT MAPPED:" in row and why in row
    assert status == 1
    assert report.splitlines()[-1].startswith(f"result: 1 not mapped ({key})")
    assert key not in files[TOML].replace("module", "")


@pytest.mark.parametrize("key", ["home", "virtualenv", "venv", "pyhome"])
def test_a_virtualenv_becomes_home(key: str, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    status, files, report = migrate(tmp_path, f"module = a:b\n{key} = {venv}")
    assert status == 0, report
    assert f'home = "{venv}"' in files[TOML]


def test_a_second_protocol_gets_a_second_socket_unit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = "module = a:b\nsocket = /run/app.sock\nhttp-socket = 127.0.0.1:8080\nhttp = :80"
    status, files, report = migrate(tmp_path, body)
    assert status == 0, report
    assert "FileDescriptorName=uwsgi\nListenStream=/run/app.sock\n" in files[SOCKET]
    second = files["etc/systemd/system/sockactd-app-http.socket"]
    assert (
        "FileDescriptorName=http\nListenStream=127.0.0.1:8080\nListenStream=0.0.0.0:80\n" in second
    )
    assert "Service=sockactd@app.service\n" in second and "WantedBy=sockets.target" in second
    assert "Sockets=sockactd@app.socket sockactd-app-http.socket\n" in files[SERVICE]
    assert "in a second socket unit, sockactd-app-http.socket" in report
    enable = "systemctl enable --now sockactd@app.socket sockactd-app-http.socket\n"
    assert capsys.readouterr().out.endswith(enable)
    (tmp_path / "stage").mkdir()
    units = stage_units(tmp_path / "stage")
    for path in (tmp_path / "out" / "etc" / "systemd" / "system").rglob("*"):
        target = units / path.relative_to(tmp_path / "out" / "etc" / "systemd" / "system")
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.write_text(path.read_text())
    names = ["sockactd@app.socket", "sockactd-app-http.socket", "sockactd@app.service"]
    assert verify(units, *names) == ""


def test_a_site_without_an_application_is_not_complete(tmp_path: Path) -> None:
    status, _, report = migrate(tmp_path, "processes = 2")
    assert status == 1
    assert "application: no `module` or `wsgi-file` found" in report


def test_the_toml_passes_sockactds_own_loader_and_check(tmp_path: Path) -> None:
    body = (
        f"chdir = {ROOT}\nmodule = tests.apps.hello:app\nprocesses = 3\nthreads = 2\n"
        "harakiri = 20\nmax-requests = 100\nlazy-apps = true\nenv = GREETING=hi\n"
        "touch-reload = /tmp/x\nbuffer-size = 8192\nsocket = /run/app.sock\nmaster = true\n"
    )
    status, _, report = migrate(tmp_path, body)
    assert status == 0, report
    config = load_config(["--config", str(tmp_path / "out" / TOML)], {})
    assert (config.processes, config.threads, config.harakiri) == (3, 2, 20.0)
    assert config.env == ["GREETING=hi"] and config.lazy_apps is True
    check = subprocess.run(
        [sys.executable, "-m", "sockactd", "--check", "--config", str(tmp_path / "out" / TOML)],
        env=child_environ(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert "application tests.apps.hello:app imports" in check.stdout


def test_the_drop_ins_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    body = (
        "module = a:b\nsocket = /run/uwsgi/app.sock\nchmod-socket = 660\n"
        "chown-socket = www-data:www-data\nlisten = 512\nuid = www-data\ngid = www-data\n"
        "limit-as = 1024\nmax-fd = 8192\numask = 027\nenv = LANG=C.UTF-8\n"
    )
    status, _, report = migrate(tmp_path, body)
    assert status == 0, report
    (tmp_path / "stage").mkdir()
    units = stage_units(tmp_path / "stage")
    for dropin in (tmp_path / "out" / "etc" / "systemd" / "system").iterdir():
        (units / dropin.name).mkdir()
        (units / dropin.name / "uwsgi.conf").write_text((dropin / "uwsgi.conf").read_text())
    assert verify(units, "sockactd@app.socket", "sockactd@app.service") == ""


def test_printing_instead_of_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "shop.ini").write_text("[uwsgi]\nmodule = a:b\nsocket = /run/s.sock\n")
    assert main([str(tmp_path / "shop.ini")]) == 0
    out = capsys.readouterr().out
    assert "# --- /etc/sockactd/shop.toml\n" in out
    assert "# --- /etc/systemd/system/sockactd@shop.socket.d/uwsgi.conf\n" in out
    assert out.rstrip().endswith("result: every option mapped or explained")


def test_section_and_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "all.ini").write_text("[uwsgi]\nmodule = a:b\n[prod]\nmodule = c:d\n")
    assert main([str(tmp_path / "all.ini"), "--section", "prod", "--name", "shop"]) == 0
    assert 'module = "c:d"' in capsys.readouterr().out
    assert main([f"{tmp_path / 'all.ini'}:prod", "--name", "shop"]) == 0
    assert 'module = "c:d"' in capsys.readouterr().out


def test_from_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command = "/usr/bin/uwsgi --master -p 4 --socket /run/a.sock --module a:b --vacuum"
    assert main(["--from-command", command, "--name", "a"]) == 0
    out = capsys.readouterr().out
    assert "processes = 4" in out and "ListenStream=/run/a.sock" in out


def test_existing_output_is_never_overwritten(tmp_path: Path) -> None:
    migrate(tmp_path, "module = a:b")
    toml = tmp_path / "out" / TOML
    toml.write_text("# edited by the operator\n")
    ini, out = tmp_path / "app.ini", tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "sockactd", "migrate-uwsgi", str(ini), "--out", str(out)],
        env=child_environ(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == ExitCode.CANT_CREATE == 73, result.stderr  # EX_CANTCREAT
    assert f"would overwrite {toml}" in result.stderr
    assert toml.read_text() == "# edited by the operator\n"


def test_exit_78_for_a_file_that_is_not_uwsgi_ini(tmp_path: Path) -> None:
    (tmp_path / "app.ini").write_text("[uwsgi]\nmodule = a:b\n[oops\n")
    result = subprocess.run(
        [sys.executable, "-m", "sockactd", "migrate-uwsgi", str(tmp_path / "app.ini")],
        env=child_environ(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 78
    assert f"{tmp_path / 'app.ini'}:3: section header '[oops' does not end with ]" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_debian_site_is_read_as_its_init_script_starts_it(tmp_path: Path) -> None:
    require(SHIPPED_INHERITED.is_file(), "needs Debian's uwsgi package (scripts/setup installs it)")
    site = tmp_path / "etc" / "uwsgi" / "apps-enabled" / "shop.ini"
    site.parent.mkdir(parents=True)
    site.write_text("[uwsgi]\nplugins = python3\nmodule = shop.wsgi\nprocesses = 4\n")
    out = tmp_path / "out"
    assert main([str(site), "--out", str(out)]) == 0
    socket = (out / "etc/systemd/system/sockactd@shop.socket.d/uwsgi.conf").read_text()
    assert "ListenStream=/run/uwsgi/app/shop/socket\n" in socket  # nginx's uwsgi_pass stays
    assert "SocketUser=www-data\nSocketMode=0660\n" in socket
    service = (out / "etc/systemd/system/sockactd@shop.service.d/uwsgi.conf").read_text()
    assert "User=www-data\nGroup=www-data\n" in service
    assert (
        "processes = 4  # default.ini:46, shop.ini:4\n"
        in (out / TOML.replace("app", "shop")).read_text()
    )
    report = (out / "migrate-uwsgi-report.txt").read_text()
    assert f"  - Debian: read {SHIPPED_INHERITED} first" in report
    assert "workers = 2" in report and "overridden by shop.ini:4" in report

    alone = tmp_path / "alone"
    assert main([str(site), "--out", str(alone), "--inherit", "none"]) == 0
    assert not (alone / "etc/systemd/system/sockactd@shop.socket.d").exists()
    assert "  - socket: none converted" in (alone / "migrate-uwsgi-report.txt").read_text()


def test_inherit_reads_a_file_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "base.ini").write_text("[uwsgi]\nsocket = /run/%(project).sock\nprocesses = 2\n")
    (tmp_path / "site.ini").write_text("[uwsgi]\nproject = site\nmodule = a:b\nprocesses = 3\n")
    args = [str(tmp_path / "site.ini"), "--inherit", str(tmp_path / "base.ini")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert (
        "ListenStream=/run/site.sock\n" in out and "processes = 3  # base.ini:3, site.ini:4" in out
    )


def test_debian_layout_detection(tmp_path: Path) -> None:
    inherited = tmp_path / "inherited.ini"
    inherited.write_text("[uwsgi]\n")
    defaults = tmp_path / "default-uwsgi"
    defaults.write_text(f"# comment\nINHERITED_CONFIG={inherited}\n")
    enabled = tmp_path / "apps-enabled" / "blog.ini"
    found = debian_site(enabled, defaults)
    assert found is not None and found.inherited == inherited
    assert [(o.key, o.value) for o in found.preset] == [
        ("deb-confnamespace", "app"), ("deb-confname", "blog"),
    ]  # fmt: skip
    assert debian_site(tmp_path / "elsewhere" / "blog.ini", defaults) is None
    fallback = debian_site(enabled, tmp_path / "missing")  # no /etc/default/uwsgi: Debian's file
    assert (fallback is not None) == SHIPPED_INHERITED.is_file()
    assert fallback is None or fallback.inherited == SHIPPED_INHERITED
