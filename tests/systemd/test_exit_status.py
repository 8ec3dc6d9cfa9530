"""The journal names sockactd's exit statuses after sysexits.h (issue 14, #9).

systemd names statuses 2-7 after LSB init scripts ("status=4/NOPERMISSION" for an app
that failed to import, before); sockactd now exits 70 and 78, which PID 1 logs as
SOFTWARE and CONFIG. Checked in the journal of a package sandbox, where PID 1 logs.
"""

from __future__ import annotations

from pathlib import Path

from tests.support import wait_until
from tests.systemd.sandbox import Sandbox
from tests.systemd.site import deploy_code, deploy_site

SERVICE = "sockactd@shop.service"


def test_the_journal_reads_software_and_config_not_lsb_names(host: Sandbox, deb: Path) -> None:
    deploy_site(host, deb, "shop")
    deploy_code(host, "shop", version=2, broken=True)
    assert host.systemctl("start", SERVICE, check=False).returncode != 0
    wait_until(lambda: "status=70/SOFTWARE" in host.journal(SERVICE), 30, "the exit in the journal")
    host.write_file("/etc/sockactd/shop.toml", "procesess = 4\n")  # a typo: status 78
    host.systemctl("restart", SERVICE, check=False)
    wait_until(lambda: "status=78/CONFIG" in host.journal(SERVICE), 30, "the 78 in the journal")
    journal = host.journal(SERVICE)
    for lsb in ("INVALIDARGUMENT", "NOTIMPLEMENTED", "NOPERMISSION", "NOTINSTALLED",
                "NOTCONFIGURED", "NOTRUNNING"):  # fmt: skip
        assert f"/{lsb}" not in journal
