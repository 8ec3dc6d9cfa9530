"""One throw-away "host" of a fleet: a private systemd with its own /etc, /usr, /var, /srv, /root.

A host is what Ansible sees as a machine: an OpenSSH server listening on the host's own
loopback address (127.0.0.2, 127.0.0.3, ...), a systemd as PID 1 of its own pid, mount
and cgroup namespaces, and packages installed with the real apt-get into overlays, so
the host machine's /etc, /usr, /var (its dpkg database), /srv and /root never change.

Layout of a host's scratch directory ROOT (under /tmp: an overlay's upper directory may
not live inside its lower one, and /var is overlaid):
  upper/T, work/T   the overlay of /T for T in OVERLAID (what the host changed)
  units/            bound over /usr/lib/systemd/system: the minimal targets and the sshd
                    unit; `apt-get install` of the .deb puts sockactd's units here
  etc-units/        bound over /etc/systemd/system (empty at first: `systemctl enable`,
                    the role's drop-ins)
  log/              service output (no journald), seen as /run/fleet-host/log inside
The host's units are exactly units/ and etc-units/ (SYSTEMD_UNIT_PATH, no trailing colon):
the host machine's own units, tmpfiles among them, never load.

This module boots, drives and removes hosts; it knows nothing of Ansible or sockactd's
configuration (tests/fleet/fleet.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.support import wait_until
from tests.systemd.sandbox import SYSTEMD, TARGETS, _cgroup2_home

__all__ = ["OVERLAID", "SSHD", "Host"]

OVERLAID: Final = ("etc", "usr", "var", "srv", "root")
SSHD: Final = Path("/usr/sbin/sshd")
INNER: Final = Path("/run/fleet-host")  # where ROOT appears inside (PrivateTmp= hides /tmp)
BOOT_TIMEOUT: Final = 30.0
SSHD_UNIT: Final = "fleet-sshd.service"


@dataclass
class Host:
    """One booted host. `address` is its loopback address; `ssh_port` its sshd's port."""

    name: str
    address: str
    root: Path
    ssh_port: int
    systemd_pid: int = 0
    _launcher: subprocess.Popen[bytes] | None = None
    _pid_ns: str = ""
    _cgroup: Path | None = None
    _boot_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    # --- layout -----------------------------------------------------------------------
    def upper(self, path: str) -> Path:
        """Host-side path of what the host wrote at `path` (an absolute path inside)."""
        top, _, rest = path.lstrip("/").partition("/")
        assert top in OVERLAID, f"{path} is not in an overlaid tree"
        return self.root / "upper" / top / rest

    def log(self, unit: str) -> str:
        path = self.root / "log" / f"{unit}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def host_key_pub(self) -> str:
        return self.upper("/etc/ssh/fleet_host_ed25519_key.pub").read_text().strip()

    # --- preparing --------------------------------------------------------------------
    def prepare(self, authorized_key: str) -> None:
        """Lay out ROOT: overlay directories, units, sshd's config and keys (made here)."""
        for sub in ("units", "etc-units", "log", *(f"{k}/{t}" for k in ("upper", "work") for t in OVERLAID)):  # fmt: skip
            (self.root / sub).mkdir(parents=True, mode=0o755)
        units = self.root / "units"
        for target in TARGETS:
            (units / f"{target}.target").write_text(f"[Unit]\nDescription={target}\n")
        (units / "test.target").write_text(
            f"[Unit]\nDescription=fleet host {self.name}\nWants={SSHD_UNIT}\n"
        )
        (units / SSHD_UNIT).write_text(
            "[Unit]\nDescription=OpenSSH server of the fleet host\n"
            "[Service]\n"
            f"ExecStart={SSHD} -D -e -f /etc/ssh/fleet_sshd_config\n"
            "RuntimeDirectory=sshd\nRuntimeDirectoryPreserve=yes\n"
        )
        dropin = units / "service.d"
        dropin.mkdir(mode=0o755)
        (dropin / "10-fleet-log.conf").write_text(
            f"[Service]\nStandardOutput=append:{INNER}/log/%n.log\nStandardError=inherit\n"
        )
        ssh = self.upper("/etc/ssh")
        ssh.mkdir(parents=True, mode=0o755)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name,
             "-f", str(ssh / "fleet_host_ed25519_key")],
            check=True, capture_output=True,
        )  # fmt: skip
        (ssh / "fleet_authorized_keys").write_text(authorized_key.strip() + "\n")
        (ssh / "fleet_sshd_config").write_text(
            f"ListenAddress {self.address}:{self.ssh_port}\n"
            "HostKey /etc/ssh/fleet_host_ed25519_key\n"
            "AuthorizedKeysFile /etc/ssh/fleet_authorized_keys\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "PidFile /run/sshd/fleet-sshd.pid\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
        )
        (self.upper("/etc") / "fleet-host").write_text(self.name + "\n")
        (self.root / "boot_id").write_text(self._boot_id + "\n")
        for folder, _dirs, files in os.walk(self.root):
            os.chmod(folder, 0o755)
            for name in files:
                if not name.endswith("_key"):  # sshd refuses a readable private host key
                    os.chmod(os.path.join(folder, name), 0o644)

    # --- booting ------------------------------------------------------------------------
    def boot(self) -> None:
        home = _cgroup2_home()
        assert home is not None, "no writable cgroup2 hierarchy"
        cgroup = home / f"{self.root.parent.name}-{self.name}"  # unique: the fleet's mkdtemp
        cgroup.mkdir()
        self._cgroup = cgroup
        script = self.root / "boot.sh"
        script.write_text(self._boot_script())
        with (self.root / "log" / "systemd.log").open("ab") as output:
            self._launcher = subprocess.Popen(
                ["/bin/sh", "-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh",
                 str(self._cgroup), "unshare", "--cgroup", "--pid", "--fork", "--mount",
                 "--mount-proc", "--propagation", "private", "/bin/sh", str(script)],
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_until(self._find_pid1, 10, f"{self.name}'s systemd to be forked")
        wait_until(self._is_up, BOOT_TIMEOUT, f"{self.name} to boot: {self.log('systemd')}")

    def _boot_script(self) -> str:
        root = self.root
        overlays = "".join(
            f"mount -t overlay overlay -o lowerdir=/{t},upperdir={root}/upper/{t},"
            f"workdir={root}/work/{t} /{t}\n"
            for t in OVERLAID
        )
        unit_path = "/etc/systemd/system:/usr/lib/systemd/system"
        return (
            "set -e\n"
            "mount --make-rprivate /\n"
            f"{overlays}"
            "mount -t tmpfs tmpfs /run\n"
            f"mkdir {INNER}\n"
            f"mount --bind {root} {INNER}\n"
            f"mount --bind {root}/units /usr/lib/systemd/system\n"
            f"mount --bind {root}/etc-units /etc/systemd/system\n"
            f"mount --bind {root}/boot_id /proc/sys/kernel/random/boot_id\n"
            # a container's policy-rc.d (exit 101) would stop the package's maintainer
            # scripts from acting on services: gone inside this host only (a whiteout)
            "rm -f /usr/sbin/policy-rc.d\n"
            "mount -t tmpfs tmpfs /sys/fs/cgroup\n"
            "mount -t cgroup2 none /sys/fs/cgroup\n"
            f"export SYSTEMD_UNIT_PATH={unit_path}\n"
            f"exec env container=sockactd-fleet {SYSTEMD} --system --unit=test.target\n"
        )

    def _find_pid1(self) -> bool:
        assert self._launcher is not None
        if self._launcher.poll() is not None:
            raise AssertionError(f"{self.name}'s launcher exited: {self.log('systemd')}")
        unshare = self._launcher.pid
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{unshare}/task/{unshare}/children").read_text().split()
            if children and Path(f"/proc/{children[0]}/exe").resolve() == SYSTEMD.resolve():
                self.systemd_pid = int(children[0])
                self._pid_ns = os.readlink(f"/proc/{self.systemd_pid}/ns/pid")
                return True
        return False

    def _is_up(self) -> bool:
        state = self.systemctl("is-system-running", check=False).stdout.strip()
        return state in ("running", "degraded")

    # --- driving ------------------------------------------------------------------------
    def run(self, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run argv inside the host (its mount and pid namespaces: its files, its systemd)."""
        assert self.systemd_pid, "host not booted"
        result = subprocess.run(
            ["nsenter", "-t", str(self.systemd_pid), "-m", "-p", *argv],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.name}: {' '.join(argv)} exited {result.returncode}: "
                f"{result.stdout}{result.stderr}"
            )
        return result

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-pager", *args, check=check)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.systemctl("show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def read(self, path: str) -> str:
        """A file as the host sees it ('' when missing)."""
        return self.run("cat", path, check=False).stdout

    def install_deb(self, deb: Path) -> None:
        """apt-get install the package into this host's overlays (maintainer scripts run)."""
        self.run(
            "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq",
            "--reinstall", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=60",
            str(deb.resolve()), timeout=300,
        )  # fmt: skip

    # --- teardown -----------------------------------------------------------------------
    def destroy(self) -> None:
        """kill -9 our PID 1, wait until its pid namespace is empty, remove its cgroup."""
        if self.systemd_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.systemd_pid, signal.SIGKILL)
            wait_until(lambda: not self._namespace_pids(), 20, f"{self.name}'s processes to exit")
        if self._launcher is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._launcher.wait(timeout=10)
            if self._launcher.poll() is None:
                os.kill(self._launcher.pid, signal.SIGKILL)  # our own unshare, by PID
                self._launcher.wait(timeout=10)
        if self._cgroup is not None and self._cgroup.exists():
            for folder in sorted(self._cgroup.rglob("*/"), key=lambda p: -len(p.parts)):
                if folder.is_dir():
                    folder.rmdir()
            self._cgroup.rmdir()
        compact = self._boot_id.replace("-", "")
        for private in Path("/tmp").glob(f"systemd-private-{compact}-*"):
            shutil.rmtree(private, ignore_errors=True)

    def _namespace_pids(self) -> list[int]:
        left = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "ns" / "pid") == self._pid_ns:
                        left.append(int(entry.name))
        return left
