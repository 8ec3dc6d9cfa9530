"""What surrounds the fleet of fleet.py: the releases it deploys, nginx, the load, the recap.

* release_source / write_release: the app of a release, as a directory or a pure-Python
  wheel; it answers with its host (the host's own /etc/fleet-host), release, pid and
  worker generation, so a test sees who served what.
* FleetNginx: one nginx with every host as an upstream that never retries elsewhere.
* PacedLoad: client threads through nginx, paced so Ansible keeps some CPU.
* parse_recap / Roll: one ansible-playbook run and its PLAY RECAP.
"""

from __future__ import annotations

import http.client
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.integration.nginx import Mode, NginxProcess
from tests.systemd.clients import Load

__all__ = [
    "MODULE",
    "FleetNginx",
    "PacedLoad",
    "Roll",
    "get_json",
    "parse_recap",
    "release_source",
    "write_release",
]

MODULE: Final = "fleetapp"

_APP_SOURCE = '''"""Release {release} of the fleet test app (tests/systemd/fleet_clients.py)."""
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


def write_release(folder: Path, release: str, extra: str = "", wheel: bool = False) -> Path:
    """`release` in `folder`: a directory RELEASE/ or a wheel fleetapp-RELEASE-py3-none-any.whl."""
    source = release_source(release, extra)
    if not wheel:
        path = folder / release
        path.mkdir()
        (path / f"{MODULE}.py").write_text(source)
        return path
    path = folder / f"fleetapp-{release}-py3-none-any.whl"
    info = f"fleetapp-{release}.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{MODULE}.py", source)
        whl.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: fleetapp\nVersion: {release}\n"
        )
        whl.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        whl.writestr(f"{info}/RECORD", "")
    return path


def get_json(address: str, port: int, timeout: float = 10.0) -> dict[str, object]:
    """One GET to http://address:port/, its JSON body."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200, response.status
        body: dict[str, object] = json.loads(response.read())
        return body
    finally:
        conn.close()


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
