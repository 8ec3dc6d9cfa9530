"""`home`/`virtualenv` with the installed package: /usr/bin/sockactd from the .deb serves an
app whose dependencies live only in a venv made with Debian's `python3 -m venv`, with the
shipped units unchanged (no ExecStart= drop-in); a venv of another Python version exits 78.

Everything is made inside the package sandbox, under /var (an overlay there), so nothing
lands on the host.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support import ROOT
from tests.systemd.clients import get
from tests.systemd.sandbox import Sandbox

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"
VENV = "/var/www/shop/venv"
SITE = f"{VENV}/lib/python{RUNNING}/site-packages"
SERVICE = "sockactd@shop.service"

APP = """
import json
import greeting  # only in the venv

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"greeting": greeting.TEXT, "from": greeting.__file__}).encode()]
"""


def install_shop(host: Sandbox, deb: Path) -> None:
    host.apt("install", "-y", str(deb))
    host.run("/usr/bin/python3", "-m", "venv", "--without-pip", VENV)
    host.write_file(f"{SITE}/greeting/__init__.py", 'TEXT = "hello from the venv"\n')
    host.write_file("/var/www/shop/code/shop_app.py", APP)
    host.write_file(
        "/etc/sockactd/shop.toml",
        f'module = "shop_app"\npythonpath = ["/var/www/shop/code"]\nvirtualenv = "{VENV}"\n',
    )
    tcp = (ROOT / "units" / "examples" / "tcp.conf").read_text()
    host.write_file(
        "/etc/systemd/system/sockactd@shop.socket.d/tcp.conf",
        tcp.replace("127.0.0.1:8000", f"127.0.0.1:{host.port}"),
    )
    host.daemon_reload()


def test_the_packaged_server_imports_the_apps_dependencies_from_the_venv(
    host: Sandbox, deb: Path
) -> None:
    install_shop(host, deb)
    host.systemctl("start", "sockactd@shop.socket")
    reply = get(host.port)
    assert reply.status == 200, host.journal(SERVICE)
    assert reply.body == {"greeting": "hello from the venv", "from": f"{SITE}/greeting/__init__.py"}
    main_pid = host.prop(SERVICE, "MainPID")
    cmdline = host.run("cat", f"/proc/{main_pid}/cmdline").stdout.split("\0")
    assert "/usr/bin/sockactd" in cmdline, cmdline  # the package's server, not one in the venv
    exec_start = host.prop(SERVICE, "ExecStart")  # the shipped unit, no drop-in
    assert "argv[]=/usr/bin/sockactd --config /etc/sockactd/shop.toml ;" in exec_start


def test_a_venv_made_for_another_python_exits_78(host: Sandbox, deb: Path) -> None:
    install_shop(host, deb)
    cfg = host.inside(f"{VENV}/pyvenv.cfg")
    cfg.write_text(cfg.read_text().replace(f"version = {RUNNING}", "version = 3.9"))
    host.systemctl("start", SERVICE, check=False)
    host.wait_for(SERVICE, "ExecMainStatus", "78")
    journal = host.journal(SERVICE)
    assert "setting 'home'" in journal and "made for Python 3.9" in journal, journal
