"""A fleet on one machine: N hosts (host.py), one nginx in front of them, Ansible to drive them.

Fleet.start() builds the project's .deb, boots the hosts (127.0.0.2, .3, ...), installs
the .deb into each with apt-get, writes the control machine's side (an ssh key, a
known_hosts file with the hosts' keys, ansible.cfg, an inventory) and starts nginx with
every host's sockactd socket as an upstream. Fleet.deploy() runs the example playbook
contrib/ansible/deploy.yml with ansible-playbook, over ssh, like an operator would.

The app each release ships (release_source) answers with its host, release, pid and
worker generation, so a test sees who served what.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.fleet.host import SSHD, Host
from tests.integration.nginx import Mode, NginxProcess
from tests.support import ROOT, free_port
from tests.systemd.clients import Load, get

__all__ = ["APP", "SERVICE", "Fleet", "FleetNginx", "PacedLoad", "Roll", "booted_fleet", "get_json", "missing_requirements", "release_source"]  # fmt: skip

APP: Final = "app"
MODULE: Final = "fleetapp"
PLAYBOOK: Final = ROOT / "contrib" / "ansible" / "deploy.yml"
ANSIBLE_PLAYBOOK: Final = Path(sys.executable).parent / "ansible-playbook"
SERVICE: Final = f"sockactd@{APP}.service"

_APP_SOURCE = '''"""Release {release} of the fleet test app (tests/fleet/fleet.py)."""
import json
import os

RELEASE = "{release}"
with open("/etc/fleet-host") as f:  # each host's own /etc
    HOST = f.read().strip()
{extra}

def application(environ, start_response):
    body = json.dumps({{
        "host": HOST,
        "release": RELEASE,
        "pid": os.getpid(),
        "generation": int(os.environ.get("SOCKACTD_GENERATION", "0")),
    }}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def release_source(release: str, extra: str = "") -> str:
    """The app module of `release`; `extra` is code run at import (to break it)."""
    return _APP_SOURCE.format(release=release, extra=extra)


def missing_requirements() -> str | None:
    """Why a fleet cannot run here, or None."""
    from tests.systemd.sandbox import missing_requirements as sandbox_missing

    missing = sandbox_missing()
    if missing is not None:
        return missing
    if not SSHD.exists() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "needs OpenSSH (Debian openssh-server, openssh-client; scripts/setup installs them)"
    if not ANSIBLE_PLAYBOOK.exists():
        return f"needs {ANSIBLE_PLAYBOOK} (ansible-core, pyproject's test extra)"
    for tool in ("dpkg-buildpackage", "apt-get"):
        if shutil.which(tool) is None:
            return f"needs {tool} to build and install the .deb (scripts/setup)"
    return None


def build_deb(into: Path) -> Path:
    """`make deb` of this checkout into `into` (the package's own tests already ran in CI)."""
    result = subprocess.run(
        ["make", "-s", "deb", f"BUILD={into}/build", f"DIST={into}/dist"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "DEB_BUILD_OPTIONS": "nocheck"},
    )  # fmt: skip
    assert result.returncode == 0, f"make deb failed:\n{result.stdout}{result.stderr}"
    (deb,) = (into / "dist").glob("sockactd_*_all.deb")
    return deb


class FleetNginx(NginxProcess):
    """nginx with every host as an upstream and no retry on another host.

    proxy_next_upstream off: a request that fails at one host reaches the client as a
    502 instead of being retried elsewhere, so "0 failed requests" means no host failed.
    """

    def __init__(self, prefix: Path, servers: Sequence[str]) -> None:
        super().__init__(prefix, "", Mode.HTTP, read_timeout=30.0, keepalive=32)
        self.servers = list(servers)

    def _render_upstream(self) -> str:
        lines = "".join(f"        server {server};\n" for server in self.servers)
        return (
            f"    upstream app {{\n{lines}        keepalive {self.keepalive};\n"
            "        keepalive_timeout 4s;\n    }"
        )

    def _render_location(self) -> str:
        return super()._render_location() + "\n            proxy_next_upstream off;"


@dataclass
class PacedLoad(Load):
    """Load's client threads, each at most one request per `interval` seconds.

    Paced so the load does not starve Ansible of the machine's two cores; a failed
    request (an exception or a non-200, nginx's 502 included) is recorded as in Load.
    """

    interval: float = 0.01

    def _run(self, deadline: float) -> None:
        while not self._stop.wait(self.interval) and time.monotonic() < deadline:
            try:
                reply = get(self.port, timeout=20)
            except (OSError, ValueError) as exc:
                self._record(failure=f"{type(exc).__name__}: {exc}")
                continue
            if reply.status != 200:
                self._record(failure=f"HTTP {reply.status}")
            else:
                self._record(reply=reply)

    def served(self, start: int = 0) -> set[tuple[object, object]]:
        """(host, release) of every answer from the `start`-th on."""
        with self._lock:
            return {(r.body.get("host"), r.body.get("release")) for r in self.answers[start:]}


@dataclass(frozen=True)
class Roll:
    """One ansible-playbook run: exit code, output, seconds, and the recap per host."""

    returncode: int
    output: str
    seconds: float
    recap: dict[str, dict[str, int]]


_RECAP: Final = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", re.MULTILINE)


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP lines -> {host: {"ok": n, "changed": n, "failed": n, ...}}."""
    recap: dict[str, dict[str, int]] = {}
    for host, counts in _RECAP.findall(output.split("PLAY RECAP", 1)[-1]):
        recap[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return recap


@dataclass
class Fleet:
    """N booted hosts with sockactd installed, nginx in front, and Ansible's files."""

    root: Path
    size: int
    hosts: list[Host] = field(default_factory=list)
    app_ports: dict[str, int] = field(default_factory=dict)
    nginx: FleetNginx | None = None
    deb: Path | None = None
    sources: dict[str, Path] = field(default_factory=dict)  # release -> what make_release made

    @property
    def key(self) -> Path:
        return self.root / "control" / "id_ed25519"

    @property
    def releases(self) -> Path:
        return self.root / "control" / "releases"

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def upstream(self, host: Host) -> str:
        return f"{host.address}:{self.app_ports[host.name]}"

    # --- starting -------------------------------------------------------------------------
    def start(self, deb: Path | None = None) -> None:
        control = self.root / "control"
        for sub in ("releases", "cp", "ansible-home"):
            (control / sub).mkdir(parents=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-control",
             "-f", str(self.key)],
            check=True, capture_output=True,
        )  # fmt: skip
        self.deb = deb or build_deb(self.root / "deb")
        for i in range(self.size):
            address = f"127.0.0.{i + 2}"
            host = Host(f"host{i + 1}", address, self.root / f"host{i + 1}", free_port(address))
            self.app_ports[host.name] = free_port(address)
            self.hosts.append(host)
            host.prepare(self.key.with_suffix(".pub").read_text())
            host.boot()
        with ThreadPoolExecutor(len(self.hosts)) as pool:  # each host has its own dpkg lock
            list(pool.map(lambda host: host.install_deb(self.deb), self.hosts))
        self._write_control_files()
        self.nginx = FleetNginx(self.root / "nginx", [self.upstream(h) for h in self.hosts])
        self.nginx.start()

    def _write_control_files(self) -> None:
        control = self.root / "control"
        (control / "known_hosts").write_text(
            "".join(f"[{h.address}]:{h.ssh_port} {h.host_key_pub}\n" for h in self.hosts)
        )
        hosts = {
            h.name: {
                "ansible_host": h.address,
                "ansible_port": h.ssh_port,
                "sockactd_listen": [self.upstream(h)],
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
        (control / "ansible.cfg").write_text(
            "[defaults]\n"
            f"inventory = {control / 'inventory.yml'}\n"
            f"roles_path = {ROOT / 'contrib' / 'ansible' / 'roles'}\n"
            f"local_tmp = {control / 'ansible-home' / 'tmp'}\n"
            "host_key_checking = True\n"
            "forks = 10\n"
            "[ssh_connection]\n"
            "pipelining = True\n"
            f"control_path_dir = {control / 'cp'}\n"
            f"ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o IdentitiesOnly=yes "
            f"-o UserKnownHostsFile={control / 'known_hosts'}\n"
        )

    # --- releases and rolls ---------------------------------------------------------------
    def make_release(self, release: str, extra: str = "", wheel: bool = False) -> Path:
        """A release as a directory (or a pure-Python wheel) on the control machine."""
        source = release_source(release, extra)
        if wheel:
            path = self.releases / f"fleetapp-{release}-py3-none-any.whl"
            info = f"fleetapp-{release}.dist-info"
            with zipfile.ZipFile(path, "w") as whl:
                whl.writestr(f"{MODULE}.py", source)
                whl.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: fleetapp\nVersion: {release}\n")  # fmt: skip
                whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")  # fmt: skip
                whl.writestr(f"{info}/RECORD", "")
        else:
            path = self.releases / release
            path.mkdir()
            (path / f"{MODULE}.py").write_text(source)
        self.sources[release] = path
        return path

    def deploy(self, release: str, source: Path, *extra: str, serial: str = "1") -> Roll:
        """ansible-playbook deploy.yml for `release` from `source`; never raises on failure."""
        control = self.root / "control"
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

    def current(self, host: Host) -> str:
        """The release /srv/app/current points to on `host` ('' when none)."""
        return host.run("readlink", f"/srv/{APP}/current", check=False).stdout.strip()

    # --- teardown -----------------------------------------------------------------------------
    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for host in self.hosts:
            host.destroy()


def get_json(address: str, port: int, timeout: float = 10.0) -> dict[str, object]:
    """One GET to http://address:port/, its JSON body."""
    import http.client

    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200, response.status
        body: dict[str, object] = json.loads(response.read())
        return body
    finally:
        conn.close()


@contextlib.contextmanager
def booted_fleet(size: int, deb: Path | None = None) -> Iterator[Fleet]:
    """A started Fleet in a fresh /tmp/sockactd-fleet-* directory; removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="sockactd-fleet-", dir="/tmp"))
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
