"""From a uWSGI site to a running sockactd instance, the way an operator moves one.

In a package sandbox (a fresh Debian "host" with this checkout's .deb installed):
a Debian uWSGI site (/etc/uwsgi/apps-enabled/shop.ini, read with the defaults Debian's
init script adds) and its application directory -> `sockactd migrate-uwsgi
--out` -> the files copied into / as the command says -> `systemctl enable --now
sockactd@shop.socket` -> nginx's `uwsgi_pass` to the socket path uWSGI used
answers 200 (and its http-socket, converted to a second socket unit, too) -> `touch`
of the converted touch-reload file reloads the new code.
"""

from __future__ import annotations

import http.client
from pathlib import Path

from tests.integration.nginx import Mode, nginx_starter
from tests.support import wait_until
from tests.systemd.sandbox import Sandbox

SITE = "/var/www/shop"  # under /var: the package sandbox's overlay, never the real host's
INI_PATH = "/etc/uwsgi/apps-enabled/shop.ini"  # /etc too
OUT = "/var/lib/migrate-uwsgi-out"
SOCKET = "sockactd@shop.socket"
SERVICE = "sockactd@shop.service"
HTTP_SOCKET = "sockactd-shop-http.socket"  # the ini's http-socket: a second socket unit

INI = """\
# A Debian uWSGI site: the init script adds /usr/share/uwsgi/conf/default.ini (master,
# www-data, the socket /run/uwsgi/app/shop/socket that nginx's uwsgi_pass names)
[uwsgi]
plugins = python3
chdir = {site}
module = wsgi:application
processes = 2
lazy-apps = true
http-socket = {address}:{port}
vacuum = true
env = GREETING=hello from %n
harakiri = 30
touch-reload = {site}/reload.trigger
die-on-term = true
need-app = true
logto = /var/log/uwsgi/%n.log
"""

APP = """\
import os

VERSION = {version}


def application(environ, start_response):
    body = "{{}} {{}} {{}}".format(VERSION, os.getpid(), os.environ["GREETING"]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


def get(port: int, address: str = "127.0.0.1") -> tuple[int, str]:
    conn = http.client.HTTPConnection(address, port, timeout=30)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_a_uwsgi_site_moves_with_one_command(host: Sandbox, deb: Path, tmp_path: Path) -> None:
    host.apt("install", "-y", str(deb))
    host.write_file(INI_PATH, INI.format(site=SITE, address=host.address, port=host.port))
    host.write_file(f"{SITE}/wsgi.py", APP.format(version=1))
    host.write_file(f"{SITE}/reload.trigger", "")

    converted = host.run("/usr/bin/sockactd", "migrate-uwsgi", INI_PATH, "--out", OUT)
    assert converted.stdout.splitlines()[-3] == "result: every option mapped or explained"
    install = f"cp -r {OUT}/etc / && systemctl daemon-reload && systemctl enable --now "
    assert converted.stdout.endswith(install + f"{SOCKET} {HTTP_SOCKET}\n")
    host.run("cp", "-r", f"{OUT}/etc", "/")
    host.systemctl("daemon-reload")
    host.systemctl("enable", "--now", SOCKET, HTTP_SOCKET)

    assert host.systemctl("is-enabled", SOCKET, HTTP_SOCKET).stdout.split() == ["enabled"] * 2
    assert host.show(SOCKET, "Listen", "SocketMode", "SocketUser") == {
        "Listen": "/run/uwsgi/app/shop/socket (Stream)",
        "SocketMode": "0660",
        "SocketUser": "www-data",
    }
    socket_path = host.inside("/run/uwsgi/app/shop/socket")
    with nginx_starter(tmp_path) as start_nginx:
        nginx = start_nginx(f"unix:{socket_path}", Mode.UWSGI)
        status, body = get(nginx.port)  # this request starts the service
        assert status == 200, nginx.logs() + host.journal(SERVICE)
        version, first_pid, greeting = body.split(" ", 2)
        assert (version, greeting) == ("1", "hello from shop")
        host.wait_for(SERVICE, "ActiveState", "active")
        assert host.prop(SERVICE, "User") == "www-data"
        http_status, http_body = get(host.port, host.address)  # the same site over HTTP
        assert (http_status, http_body.split(" ")[0]) == (200, "1")
        main_pid = host.prop(SERVICE, "MainPID")

        host.write_file(f"{SITE}/wsgi.py", APP.format(version=2))
        host.run("touch", f"{SITE}/reload.trigger")  # what the deploy script did for uWSGI
        wait_until(
            lambda: get(nginx.port)[1].startswith("2 "),
            60,
            f"version 2 to answer after the touch; journal:\n{host.journal(SERVICE)}",
            interval=0.1,
        )
        assert host.prop(SERVICE, "MainPID") == main_pid  # a standard reload, in place
        assert "standard reload" in host.journal(SERVICE)
        status, body = get(nginx.port)
        assert status == 200 and body.split(" ")[1] != first_pid  # a new worker answers
