"""The package sandbox itself: the real apt-get installs into it, the host stays clean."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.systemd.sandbox import Sandbox


def host_knows_sockactd() -> bool:
    query = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", "sockactd"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "installed" in query.stdout


def test_apt_get_installs_into_the_sandbox_only(host: Sandbox, deb: Path) -> None:
    was_on_host = host_knows_sockactd()
    # no host unit visible, and no container "start nothing" policy for maintainer scripts
    files = host.systemctl("list-unit-files", "--no-legend").stdout
    assert "systemd-tmpfiles-setup" not in files and "ssh" not in files, files
    assert not host.inside("/usr/sbin/policy-rc.d").exists()

    host.apt("install", "-y", str(deb))

    assert "ii  sockactd" in host.run("dpkg", "-l", "sockactd").stdout
    assert host.inside("/lib/systemd/system/sockactd@.service").is_file()
    assert "sockactd@.socket" in host.systemctl("list-unit-files", "--no-legend").stdout
    assert host.inside("/usr/bin/sockactd").is_file()
    # the host: same dpkg database state as before, no unit, no command
    assert host_knows_sockactd() == was_on_host
    if not was_on_host:
        assert not Path("/lib/systemd/system/sockactd@.service").exists()
        assert not Path("/usr/bin/sockactd").exists()


def test_journald_runs_inside(host: Sandbox) -> None:
    host.run("systemd-cat", "-t", "probe", "echo", "hello from the sandbox")
    found = host.run("journalctl", "--no-pager", "-t", "probe", "-o", "cat").stdout
    assert "hello from the sandbox" in found
