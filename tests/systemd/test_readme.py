"""README.md's "Under systemd" commands, run literally on a fresh package sandbox.

The commands are read from README.md (not retyped here), run one by one as root in a
directory holding ./dist/sockactd_VERSION_all.deb, and then nginx -- as Debian runs it,
workers as www-data -- must get a 200 from the instance through its uwsgi socket.
Covers issue 14 #1 (/etc/sockactd exists after the install) along the way.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT
from tests.systemd.clients import get
from tests.systemd.frontend import start_nginx
from tests.systemd.sandbox import Sandbox


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Under systemd\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert block, "no sh block under README.md's 'Under systemd'"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_under_systemd_works_literally(host: Sandbox, deb: Path) -> None:
    commands = readme_commands()
    assert commands[0].startswith("apt-get install ./dist/sockactd_*.deb")
    workdir = deb.parent.parent  # holds dist/
    for command in commands:
        done = host.run("sh", "-ec", f'cd "$1" && {command}', "sh", str(workdir), check=False)
        assert done.returncode == 0, f"{command!r} exited {done.returncode}: {done.stderr}"
    assert "sockactd" in host.run("dpkg", "-S", "/etc/sockactd").stdout  # the package owns it
    port = start_nginx(host, "myapp")
    reply = get(port, "/", timeout=30, host=host.address)
    assert reply.status == 200, host.journal("sockactd@myapp.service") + host.log(
        "test-nginx.service"
    )
    assert host.systemctl("--failed", "--no-legend").stdout.strip() == ""
