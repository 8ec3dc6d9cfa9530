"""Upgrading the installed package under load: a checked standard reload, never a restart.

Version N (this tree) serves a site through nginx; version N+1 (the same tree, version
bumped) is installed with the real apt-get while clients keep sending requests. The
postinst's packaging/libexec/upgrade-reload must move the running master onto N+1 in
place -- or, when the site's code on disk cannot load, keep N serving and say so.
"""

from __future__ import annotations

from pathlib import Path

from tests.support import wait_until
from tests.systemd.clients import Load, get
from tests.systemd.debs import tree_version
from tests.systemd.frontend import start_nginx
from tests.systemd.sandbox import Sandbox
from tests.systemd.site import deploy_code, deploy_site

SERVICE = "sockactd@shop.service"
SOCKET = "sockactd@shop.socket"
ONESHOT = "sockactd-reload@shop.service"


def serve_through_nginx(host: Sandbox, deb: Path) -> tuple[int, str]:
    """Version N serving /srv/shop behind nginx; returns (nginx port, sockactd MainPID)."""
    deploy_site(host, deb, "shop")
    port = start_nginx(host, "shop")
    first = get(port, host=host.address, timeout=30)
    assert first.status == 200, host.log(SERVICE)
    assert first.body["sockactd"] == tree_version()
    host.wait_for(SERVICE, "ActiveState", "active")
    return port, host.prop(SERVICE, "MainPID")


def upgrade_under_load(host: Sandbox, port: int, next_deb: Path) -> tuple[str, list[str]]:
    """apt-get install N+1 while 4 clients loop; returns (apt's output, failed requests)."""
    with Load(port, host=host.address, max_seconds=300) as load:
        wait_until(lambda: load.count() >= 50, 30, "the load to get going")
        upgrade = host.apt("install", "-y", str(next_deb))
        done = load.count()
        wait_until(lambda: load.count() >= done + 50, 30, "requests after the upgrade")
    assert load.answers, "no request was answered"
    return upgrade.stdout + upgrade.stderr, load.failures


def test_upgrade_reloads_the_running_master_onto_the_new_version(
    host: Sandbox, deb: Path, next_deb: Path
) -> None:
    port, main_pid = serve_through_nginx(host, deb)
    output, failures = upgrade_under_load(host, port, next_deb)
    assert failures == []
    assert f"{SERVICE} now runs sockactd {tree_version()}+up1" in output, output
    assert host.prop(SERVICE, "MainPID") == main_pid  # reloaded in place, not restarted
    assert host.prop(SERVICE, "NRestarts") == "0"
    reply = get(port, host=host.address)
    assert reply.body["sockactd"] == tree_version() + "+up1"  # forked by the new master
    assert host.prop(ONESHOT, "Result") == "success"


def test_upgrade_with_code_that_cannot_load_keeps_the_old_version_serving(
    host: Sandbox, deb: Path, next_deb: Path
) -> None:
    port, main_pid = serve_through_nginx(host, deb)
    deploy_code(host, "shop", version=2, broken=True)  # on disk, not loaded yet
    output, failures = upgrade_under_load(host, port, next_deb)
    assert failures == []
    # loud: in apt-get's output, with the reason, and in `systemctl --failed`
    assert f"ERROR: {SERVICE} still runs the OLD version" in output, output
    assert "broken on purpose" in output, output
    assert ONESHOT in host.systemctl("--failed", "--no-legend").stdout
    # the old master and its socket keep serving the old code
    assert host.prop(SERVICE, "MainPID") == main_pid
    assert host.prop(SERVICE, "ActiveState") == "active"
    assert host.prop(SOCKET, "ActiveState") == "active"
    reply = get(port, host=host.address)
    assert (reply.status, reply.body["version"], reply.body["sockactd"]) == (200, 1, tree_version())
    # the package itself is configured: a later apt-get run is not blocked by one site
    assert f"ii  sockactd       {tree_version()}+up1" in host.run("dpkg", "-l", "sockactd").stdout
