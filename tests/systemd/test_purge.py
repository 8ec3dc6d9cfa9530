"""`apt-get purge` leaves nothing of the package or its instances (issue 14, #10).

Checked after purging an installed, enabled, serving instance with a .path unit enabled
and a trigger file touched:
  * dpkg no longer knows the package; no sockactd unit is loaded or running, and the
    instance's dynamic user sockactd-shop no longer exists;
  * no file named sockactd* under /etc/systemd/system (the enablement links in
    sockets.target.wants, paths.target.wants) nor under /lib/systemd/system;
  * /usr/bin/sockactd, /usr/bin/sockactctl, /usr/libexec/sockactd, the Python package,
    /usr/lib/sysusers.d/sockactd.conf, /usr/share/doc/sockactd are gone;
  * /var/lib/sockactd (trigger files), /var/lib/private/sockactd, /run/sockactd are gone;
  * what stays, on purpose: the administrator's /etc/sockactd/shop.toml (dpkg leaves the
    directory with it) and the system group sockactd-deploy;
  * a reinstall does not re-enable the instance.
"""

from __future__ import annotations

from pathlib import Path

from tests.systemd.clients import get
from tests.systemd.frontend import start_nginx
from tests.systemd.sandbox import Sandbox
from tests.systemd.site import deploy_site

GONE = (
    "/usr/bin/sockactd",
    "/usr/bin/sockactctl",
    "/usr/libexec/sockactd",
    "/usr/lib/python3/dist-packages/sockactd",
    "/usr/lib/sysusers.d/sockactd.conf",
    "/usr/share/doc/sockactd",
    "/var/lib/sockactd",
    "/var/lib/private/sockactd",
    "/run/sockactd",
)


def named_sockactd(host: Sandbox, folder: str) -> list[str]:
    found = host.run("find", folder, "-name", "sockactd*", check=False).stdout.split()
    return sorted(found)


def test_purge_leaves_nothing_of_the_package_or_its_instances(host: Sandbox, deb: Path) -> None:
    deploy_site(host, deb, "shop")
    host.systemctl("enable", "--now", "sockactd-chain-reload@shop.path")
    port = start_nginx(host, "shop")
    assert get(port, host=host.address, timeout=30).status == 200
    host.wait_for("sockactd@shop.service", "ActiveState", "active")
    host.run("touch", "/var/lib/sockactd/shop/chain-reload")
    assert named_sockactd(host, "/etc/systemd/system")  # the links exist before
    assert host.run("getent", "passwd", "sockactd-shop", check=False).returncode == 0

    host.apt("purge", "-y", "sockactd")

    assert "sockactd" not in host.run("dpkg-query", "-W", check=False).stdout
    assert named_sockactd(host, "/etc/systemd/system") == []
    assert named_sockactd(host, "/lib/systemd/system") == []
    assert [p for p in GONE if host.inside(p).exists()] == []
    units = host.systemctl("list-units", "--all", "--no-legend", "sockactd*").stdout
    assert units.strip() == "", units
    # the dynamic user is released with the last unit using it (nss-systemd then has no entry)
    assert host.run("getent", "passwd", "sockactd-shop", check=False).returncode == 2
    assert sorted(p.name for p in host.inside("/etc/sockactd").iterdir()) == ["shop.toml"]

    host.apt("install", "-y", str(deb))
    enabled = host.systemctl("is-enabled", "sockactd@shop.socket", check=False).stdout
    assert enabled.strip() == "disabled"
