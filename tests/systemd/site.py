"""A site on a package sandbox: the .deb installed, an app under /srv, its instance enabled.

What an operator does after `apt-get install`, for the tests of the package's life
(install, upgrade, purge): `deploy_site(host, deb, "shop")` installs the .deb, writes
/srv/shop/sdapp.py (tests/systemd/clients.py's app) and /etc/sockactd/shop.toml, and
enables sockactd@shop.socket; `deploy_code` replaces the app (a "git pull").
"""

from __future__ import annotations

from pathlib import Path

from tests.systemd.clients import APP_MODULE, app_settings, app_source
from tests.systemd.sandbox import Sandbox, toml_text

__all__ = ["deploy_code", "deploy_site"]


def deploy_code(host: Sandbox, instance: str, version: int, broken: bool = False) -> None:
    source = app_source(version=version, broken=broken, instance=instance)
    host.write_file(f"/srv/{instance}/{APP_MODULE}.py", source)


def deploy_site(host: Sandbox, deb: Path, instance: str, **settings: object) -> None:
    host.apt("install", "-y", str(deb))
    deploy_code(host, instance, version=1)
    config = app_settings(pythonpath=[f"/srv/{instance}"], **settings)
    host.write_file(f"/etc/sockactd/{instance}.toml", toml_text(config))
    host.systemctl("enable", "--now", f"sockactd@{instance}.socket")
