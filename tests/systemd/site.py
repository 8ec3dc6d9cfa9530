"""A site on a package sandbox: the .deb installed, an app under /srv, its instance enabled.

What an operator does after `apt-get install`, for the tests of the package's life
(install, upgrade, purge): `deploy_site(host, deb, "shop")` installs the .deb, writes
/srv/shop/sdapp.py (tests/systemd/clients.py's app) and /etc/sockactd/shop.toml, and
enables sockactd@shop.socket; `deploy_code` replaces the app (a "git pull").
`speak_http(host)` installs the shipped units/examples/http.conf for every instance, so
that `get_unix(host, "shop")` can talk HTTP to /run/sockactd/shop.sock directly.
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

from tests.systemd.clients import APP_MODULE, app_settings, app_source
from tests.systemd.sandbox import Sandbox, toml_text

__all__ = ["deploy_code", "deploy_site", "get_unix", "speak_http"]


def deploy_code(host: Sandbox, instance: str, version: int, broken: bool = False) -> None:
    source = app_source(version=version, broken=broken, instance=instance)
    host.write_file(f"/srv/{instance}/{APP_MODULE}.py", source)


def deploy_site(host: Sandbox, deb: Path, instance: str, **settings: object) -> None:
    host.apt("install", "-y", str(deb))
    deploy_code(host, instance, version=1)
    config = app_settings(pythonpath=[f"/srv/{instance}"], **settings)
    host.write_file(f"/etc/sockactd/{instance}.toml", toml_text(config))
    host.systemctl("enable", "--now", f"sockactd@{instance}.socket")


def speak_http(host: Sandbox) -> None:
    """The packaged http.conf drop-in for every instance's socket (before enabling them)."""
    example = host.inside("/usr/share/doc/sockactd/examples/http.conf").read_text()
    host.write_file("/etc/systemd/system/sockactd@.socket.d/http.conf", example)
    host.daemon_reload()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self._path))


def get_unix(
    host: Sandbox, instance: str, target: str = "/", timeout: float = 30
) -> dict[str, Any]:
    """GET target over /run/sockactd/INSTANCE.sock (HTTP: see speak_http); the JSON body."""
    conn = _UnixHTTPConnection(host.inside(f"/run/sockactd/{instance}.sock"), timeout)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, (response.status, body)
        result: dict[str, Any] = json.loads(body)
        return result
    finally:
        conn.close()
