"""A fleet on one machine: N package sandboxes as hosts, one nginx in front, Ansible to drive them.

Each host is a package sandbox (sandbox.py, packaged=True: a systemd of its own with
overlays on /etc, /usr, /var, /srv, /opt) with its own loopback address (127.0.0.2,
127.0.0.3, ...), the project's .deb installed by the real apt-get, and an OpenSSH server
on that address whose host key the fleet made, as Ansible reaches real machines.
Fleet.start() boots the hosts, installs the .deb, writes the control machine's side (an
ssh key, known_hosts, ansible.cfg, a YAML inventory) and starts nginx with every host's
sockactd socket as an upstream. Fleet.deploy() runs contrib/ansible/deploy.yml with
ansible-playbook over ssh, as an operator would.

The releases, nginx, the load and the recap parser are in fleet_clients.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.support import ROOT, free_port
from tests.systemd.fleet_clients import MODULE, FleetNginx, Roll, parse_recap, write_release
from tests.systemd.sandbox import Sandbox

__all__ = ["APP", "SERVICE", "Fleet", "FleetHost", "booted_fleet", "missing_requirements"]

APP: Final = "app"
PLAYBOOK: Final = ROOT / "contrib" / "ansible" / "deploy.yml"
ANSIBLE_PLAYBOOK: Final = Path(sys.executable).parent / "ansible-playbook"
SERVICE: Final = f"sockactd@{APP}.service"
SSHD: Final = Path("/usr/sbin/sshd")
SSHD_UNIT: Final = "fleet-sshd.service"


def missing_requirements() -> str | None:
    """Why a fleet cannot run here, or None (the sandbox's and the .deb's needs come first)."""
    if not SSHD.exists() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "needs OpenSSH (Debian openssh-server, openssh-client; scripts/setup installs them)"
    if not ANSIBLE_PLAYBOOK.exists():
        return f"needs {ANSIBLE_PLAYBOOK} (ansible-core, pyproject's test extra)"
    return None


@dataclass
class FleetHost:
    """One host: a booted package sandbox whose sshd listens on `address`:`ssh_port`.

    sockactd@app's socket listens on `address`:`app_port` (the role's sockactd_listen).
    """

    name: str
    box: Sandbox
    ssh_port: int

    @property
    def address(self) -> str:
        return self.box.address

    @property
    def app_port(self) -> int:
        return self.box.port

    @property
    def upstream(self) -> str:
        return f"{self.address}:{self.app_port}"

    def prepare_sshd(self, authorized_key: str) -> str:
        """Before boot: the sshd unit, its config and a fresh host key; returns the public key."""
        root = self.box.root
        (root / "lib-units" / SSHD_UNIT).write_text(
            "[Unit]\nDescription=OpenSSH server of the fleet host\n"
            "[Service]\n"
            f"ExecStart={SSHD} -D -e -f /etc/ssh/fleet_sshd_config\n"
            "RuntimeDirectory=sshd\nRuntimeDirectoryPreserve=yes\n"
        )
        ssh = root / "upper" / "etc" / "ssh"  # seen as /etc/ssh inside (the /etc overlay)
        ssh.mkdir(parents=True, mode=0o755)
        key = ssh / "fleet_host_ed25519_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name, "-f", str(key)],
            check=True, capture_output=True,
        )  # fmt: skip
        (ssh / "fleet_authorized_keys").write_text(authorized_key)
        (ssh / "fleet_sshd_config").write_text(
            f"ListenAddress {self.address}:{self.ssh_port}\n"
            f"HostKey /etc/ssh/{key.name}\n"
            "AuthorizedKeysFile /etc/ssh/fleet_authorized_keys\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "PidFile /run/sshd/fleet-sshd.pid\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
        )
        (root / "upper" / "etc" / "fleet-host").write_text(self.name + "\n")
        return f"[{self.address}]:{self.ssh_port} " + key.with_suffix(".pub").read_text()

    def show(self, unit: str, *props: str) -> dict[str, str]:
        return self.box.show(unit, *props)

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.box.run(*argv, check=check)


@dataclass
class Fleet:
    """N booted hosts with sockactd installed, nginx in front, and Ansible's files."""

    root: Path
    size: int
    hosts: list[FleetHost] = field(default_factory=list)
    nginx: FleetNginx | None = None
    sources: dict[str, Path] = field(default_factory=dict)  # release -> what make_release made

    @property
    def control(self) -> Path:
        """The control machine's files: key, known_hosts, ansible.cfg, inventory, releases."""
        return self.root / "control"

    @property
    def key(self) -> Path:
        return self.control / "id_ed25519"

    @property
    def releases(self) -> Path:
        return self.control / "releases"

    # --- starting -------------------------------------------------------------------------
    def start(self, deb: Path) -> None:
        for sub in ("releases", "cp", "ansible-home"):
            (self.control / sub).mkdir(parents=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "control", "-f", str(self.key)],
            check=True, capture_output=True,
        )  # fmt: skip
        authorized = self.key.with_suffix(".pub").read_text()
        known_hosts = []
        for i in range(self.size):
            address = f"127.0.0.{i + 2}"
            # the sandbox's cgroup is named after its root: unique across concurrent runs
            box = Sandbox(
                root=self.root / f"{self.root.name}-host{i + 1}",
                port=free_port(address), packaged=True, address=address,
            )  # fmt: skip
            box.root.mkdir(mode=0o755)
            host = FleetHost(f"host{i + 1}", box, free_port(address))
            self.hosts.append(host)
            box.prepare()
            known_hosts.append(host.prepare_sshd(authorized))
            box.boot()
            box.systemctl("start", SSHD_UNIT)
        # --reinstall: CI's scripts/test leaves the same version installed on the machine
        # itself, which every host's /var/lib/dpkg (an overlay) then starts from
        install = ("install", "-y", "-qq", "--reinstall", str(deb))
        with ThreadPoolExecutor(len(self.hosts)) as pool:  # each host has its own dpkg lock
            list(pool.map(lambda h: h.box.apt(*install), self.hosts))
        (self.control / "known_hosts").write_text("".join(known_hosts))
        self._write_ansible_files()
        self.nginx = FleetNginx(self.root / "nginx", [h.upstream for h in self.hosts])
        self.nginx.start()

    def _write_ansible_files(self) -> None:
        control = self.control
        hosts = {
            h.name: {
                "ansible_host": h.address,
                "ansible_port": h.ssh_port,
                "sockactd_listen": [h.upstream],
            }
            for h in self.hosts
        }
        group_vars = {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_python_interpreter": "/usr/bin/python3",
            "sockactd_module": f"{MODULE}:application",
            "sockactd_settings": {"processes": 2},
            "sockactd_staging_dir": str(control / "staging"),
        }
        inventory = {"app": {"hosts": hosts, "vars": group_vars}}  # JSON is YAML
        (control / "inventory.yml").write_text(json.dumps(inventory, indent=1) + "\n")
        # remote_tmp: not root's home (/root is the real machine's, not overlaid); this
        # directory is in /var, so a host's writes there land in its overlay, the control
        # machine's (delegated tasks) in the fleet's directory
        (control / "ansible.cfg").write_text(
            "[defaults]\n"
            f"inventory = {control / 'inventory.yml'}\n"
            f"roles_path = {ROOT / 'contrib' / 'ansible' / 'roles'}\n"
            f"local_tmp = {control / 'ansible-home' / 'tmp'}\n"
            f"remote_tmp = {control / 'remote-tmp'}\n"
            "host_key_checking = True\n"
            "forks = 10\n"
            "[ssh_connection]\n"
            "pipelining = True\n"
            f"control_path_dir = {control / 'cp'}\n"
            "ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o IdentitiesOnly=yes "
            f"-o UserKnownHostsFile={control / 'known_hosts'}\n"
        )

    # --- releases and rolls ---------------------------------------------------------------
    def make_release(self, release: str, extra: str = "", wheel: bool = False) -> Path:
        """A release as a directory (or a pure-Python wheel) on the control machine."""
        path = write_release(self.releases, release, extra, wheel)
        self.sources[release] = path
        return path

    def deploy(self, release: str, source: Path, *extra: str, serial: str = "1") -> Roll:
        """ansible-playbook deploy.yml for `release` from `source`; never raises on failure."""
        control = self.control
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(control / "ansible.cfg"),
            "ANSIBLE_HOME": str(control / "ansible-home"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "LC_ALL": "C.UTF-8",
        }
        argv = [
            str(ANSIBLE_PLAYBOOK), str(PLAYBOOK),
            "-e", f"app={APP}", "-e", f"release={release}", "-e", f"release_src={source}",
            "-e", f"batch={serial}", *extra,
        ]  # fmt: skip
        started = time.monotonic()
        result = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=600, check=False
        )
        output = result.stdout + result.stderr
        (control / "last-roll.log").write_text(output)
        return Roll(result.returncode, output, time.monotonic() - started, parse_recap(output))

    # --- what a test checks -----------------------------------------------------------------
    def main_pids(self) -> dict[str, str]:
        return {h.name: h.show(SERVICE, "MainPID")["MainPID"] for h in self.hosts}

    def current(self, host: FleetHost) -> str:
        """The release /srv/app/current points to on `host` ('' when none)."""
        return host.run("readlink", f"/srv/{APP}/current", check=False).stdout.strip()

    # --- teardown -----------------------------------------------------------------------------
    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for host in self.hosts:
            host.box.destroy()  # its sshd goes with it, and Ansible's ssh masters with that


@contextlib.contextmanager
def booted_fleet(size: int, deb: Path) -> Iterator[Fleet]:
    """A started Fleet of `size` hosts with `deb` installed, in a fresh
    /var/tmp/sockactd-fleet-* directory (world-readable, see booted_sandbox); removed after."""
    root = Path(tempfile.mkdtemp(prefix="sockactd-fleet-", dir="/var/tmp"))
    os.chmod(root, 0o755)
    fleet = Fleet(root=root, size=size)
    try:
        fleet.start(deb)
        yield fleet
    finally:
        try:
            fleet.stop()
        finally:
            if os.environ.get("SOCKACTD_KEEP_SANDBOX") != "1":
                shutil.rmtree(root, ignore_errors=True)
