"""A private, throw-away systemd (PID 1 of its own pid, mount and cgroup namespaces).

Two kinds, one class (`Sandbox`), booted by `booted_sandbox(...)`:

* checkout sandbox (the default, the `sandbox` fixture): the shipped units in units/ are
  copied unchanged into ONE unit directory, with drop-ins that only (a) send service
  output to files, (b) run this checkout's code with Debian's /usr/bin/python3 instead
  of the not-installed /usr/bin/sockactd, and (c) put the socket on 127.0.0.1:PORT with
  the shipped units/examples/tcp.conf.
* package sandbox (`packaged=True`, the `host` fixture): a fresh "host" into which the
  real .deb is installed. /etc, /usr, /var, /srv, /opt are overlays inside the sandbox (hostfs.py),
  the host's units are hidden, journald runs, /usr/sbin/policy-rc.d is gone; nothing of
  units/ or the checkout is loaded. `host.apt("install", "./dist/...deb")` runs the
  real apt-get, dpkg and maintainer scripts against this systemd; the host stays clean.

The API a test (or another harness: several sandboxes are several "hosts") uses:

    with booted_sandbox(packaged=True, address="127.0.0.2") as host:
        host.apt("install", "-y", str(deb))         # apt-get inside; CompletedProcess
        host.run("sh", "-c", "cp ... /etc/sockactd/a.toml", input=None)  # any command inside
        host.systemctl("enable", "--now", "sockactd@a.socket")
        host.write_file("/etc/sockactd/a.toml", "...")  # a file as seen inside
        host.inside("/run/sockactd/a.sock")         # host path of that inside path
        host.journal("sockactd@a.service")           # its journal, as text
        host.show(unit, "MainPID"), host.wait_for(unit, "ActiveState", "active")

`address` is this host's loopback address (127.0.0.x: the network namespace is the
host's, shared by every sandbox): give each "host" its own and bind its TCP sockets
(a socket drop-in, an sshd) there; `port` is a free port on it.

What keeps the host safe (see /work/shared/notes/systemd-sandbox.md):
* SYSTEMD_UNIT_PATH names only sandbox directories, no trailing colon: checked before
  booting, or the host's own units (tmpfiles: emptying /tmp!) would load.
* Nothing is mounted over /tmp. Inside the namespace /run is a tmpfs (the root is
  bound to /run/sockactd-test there, visible despite PrivateTmp=), /var/lib is
  the sandbox's var-lib/ (checkout) or /var is an overlay (package), the boot id is a
  fresh one (so the PrivateTmp= directories systemd creates in the shared /tmp
  carry it and teardown removes exactly those), and cgroup2 is a child cgroup of
  ours, removed after the run.
* Teardown is `kill -9` of the sandbox's PID 1 (the PID we started), which ends
  every process of the pid namespace; it then waits until none is left.

This module boots, drives and removes the sandbox. It knows nothing of what a test
checks; tests/systemd/conftest.py turns it into the `sandbox` and `host` fixtures.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tests.support import ROOT, free_port, wait_until
from tests.systemd import hostfs

__all__ = [
    "INSTANCE",
    "SYSTEMD",
    "Sandbox",
    "booted_sandbox",
    "missing_requirements",
    "toml_text",
]

SYSTEMD: Final = Path("/lib/systemd/systemd")
PYTHON: Final = "/usr/bin/python3"  # Debian's: readable by a DynamicUser, unlike pyenv under /root
INSTANCE: Final = "demo"
# SOCKACTD_UNITS_DIR=/lib/systemd/system: boot the units an installed package put there,
# running the installed /usr/bin commands (scripts/check-packaging --keep-installed).
INSTALLED: Final = os.environ.get("SOCKACTD_UNITS_DIR")
UNITS: Final = Path(INSTALLED) if INSTALLED else ROOT / "units"
TARGETS: Final = (
    "sysinit", "basic", "sockets", "paths", "timers", "shutdown", "multi-user", "network", "test",
)  # fmt: skip
# the console scripts the shipped units name, and what runs instead in the sandbox
COMMANDS: Final[Mapping[str, str]] = {
    "/usr/bin/sockactd ": f"{PYTHON} -m sockactd ",
    "/usr/bin/sockactctl ": f"{PYTHON} -m sockactd ctl ",
    "/usr/libexec/sockactd/": "/bin/sh /run/sockactd-test/libexec/",  # packaging/libexec
}
# where the sandbox root appears inside: PrivateTmp= hides /var/tmp and /tmp from services
INNER: Final = Path("/run/sockactd-test")
SYSPATH: Final = "/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_TIMEOUT: Final = 20.0
DEBIAN_MODULES: Final = ("httptools", "sdnotify", "pyinotify")


def missing_requirements() -> str | None:
    """Why a sandbox cannot boot here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root to boot a private systemd"
    for tool in ("unshare", "nsenter", "systemctl", "mount"):
        if shutil.which(tool) is None:
            return f"needs {tool} (util-linux / systemd)"
    if not SYSTEMD.exists():
        return f"needs the systemd binary {SYSTEMD}"
    if _cgroup2_home() is None:
        return "needs a writable cgroup2 hierarchy"
    probe = subprocess.run(
        [PYTHON, "-c", "import " + ", ".join(DEBIAN_MODULES)], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return f"needs {PYTHON} with the Debian packages python3-" + " python3-".join(
            DEBIAN_MODULES
        )
    return None


def _cgroup2_home() -> Path | None:
    """Our own cgroup in the cgroup2 hierarchy (where a child cgroup for the sandbox goes)."""
    mount = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            mount = Path(left.split(" ")[4])
            break
    ours = next(
        (ln[3:] for ln in Path("/proc/self/cgroup").read_text().splitlines() if ln[:3] == "0::"),
        None,
    )
    if mount is None or ours is None:
        return None
    home = mount / ours.lstrip("/")
    return home if os.access(home, os.W_OK) else None


def toml_text(settings: Mapping[str, object]) -> str:
    """A flat TOML document (str, int, float, bool, list of str values)."""

    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"no TOML for {v!r}")

    return "".join(f"{key} = {value(v)}\n" for key, v in settings.items())


def _command_override(unit_text: str) -> str:
    """Exec lines of a shipped unit with the /usr/bin console scripts swapped for the checkout."""
    lines = []
    for key in ("ExecStartPre", "ExecStart", "ExecReload"):
        for match in re.finditer(rf"^{key}=(.*)$", unit_text, flags=re.MULTILINE):
            command = match.group(1)
            if not INSTALLED:
                for shipped, here in COMMANDS.items():
                    command = command.replace(shipped, here)
            lines += [f"{key}=", f"{key}={command}"]
    section = "[Socket]" if "[Socket]" in unit_text else "[Service]"
    return section + "\n" + "\n".join(lines) + "\n"


@dataclass
class Sandbox:
    """One booted throw-away systemd and the directory tree it lives in."""

    root: Path  # world-readable: the DynamicUser service runs code from here
    port: int  # a free port on `address` (the checkout sandbox's socket unit listens there)
    packaged: bool = False  # a package sandbox (overlays, no checkout units): see the docstring
    address: str = "127.0.0.1"  # this "host"'s loopback address
    systemd_pid: int = 0  # host PID of the sandbox's PID 1
    _launcher: subprocess.Popen[bytes] | None = None
    _pid_ns: str = ""
    _cgroup: Path | None = None
    _boot_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _background: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # --- layout ---------------------------------------------------------------------
    @property
    def unit_dir(self) -> Path:
        return self.root / "units"

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def var_lib(self) -> Path:
        """Seen as /var/lib inside the sandbox."""
        return self.root / "var-lib"

    def config_path(self, instance: str = INSTANCE) -> Path:
        return self.root / "etc" / f"{instance}.toml"

    def state_path(self, name: str, instance: str = INSTANCE) -> Path:
        """Host path of /var/lib/sockactd/INSTANCE/NAME (a trigger file, for example)."""
        if self.packaged:
            return self.inside(f"/var/lib/sockactd/{instance}/{name}")
        return self.var_lib / "sockactd" / instance / name

    def runtime_path(self, name: str, instance: str = INSTANCE) -> Path:
        """Host path of /run/sockactd/INSTANCE/NAME (RuntimeDirectory=, the service's own)."""
        return self.inside(f"/run/sockactd/{instance}/{name}")

    def log(self, unit: str) -> str:
        """What the unit wrote: its log file (checkout sandbox, or "systemd" for the launcher's
        own output), else its journal (package sandbox)."""
        path = self.log_dir / f"{unit}.log"
        if path.exists():
            return path.read_text(errors="replace")
        return self.journal(unit) if self.packaged else ""

    def inside(self, path: str) -> Path:
        """The host path of `path` as the sandbox sees it (through its PID 1's root)."""
        assert self.systemd_pid, "sandbox not booted"
        assert path.startswith("/"), path
        return Path(f"/proc/{self.systemd_pid}/root{path}")

    def write_file(self, path: str, text: str, mode: int = 0o644) -> None:
        """Create or replace the file `path` inside the sandbox (parents made 0755, root's)."""
        target = self.inside(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def journal(self, unit: str) -> str:
        """The unit's journal in the sandbox (package sandbox only: it runs journald)."""
        if not self.systemd_pid:
            return ""
        return self.run(
            "journalctl", "--no-pager", "-o", "short-monotonic", "-u", unit, check=False
        ).stdout

    # --- preparing ----------------------------------------------------------------------
    def prepare(self) -> None:
        for sub in ("units", "code", "log", "var-lib", "etc"):
            (self.root / sub).mkdir(mode=0o755)
        if self.packaged:
            self.boot_id_file.write_text(self._boot_id + "\n")
            _make_world_readable(self.root)
            hostfs.prepare(self.root, TARGETS)
            return
        for target in TARGETS:
            (self.unit_dir / f"{target}.target").write_text(f"[Unit]\nDescription={target}\n")
        for unit in sorted(UNITS.glob("sockactd*@.*")):
            shutil.copyfile(unit, self.unit_dir / unit.name)
            if unit.suffix in (".service", ".socket"):
                self.write_dropin(unit.name, "10-checkout.conf", self._checkout_dropin(unit))
        self.write_dropin(
            "service", "10-log.conf",
            f"[Service]\nStandardOutput=append:{INNER}/log/%n.log\nStandardError=inherit\n",
        )  # fmt: skip
        tcp = (ROOT / "units" / "examples" / "tcp.conf").read_text()
        assert "127.0.0.1:8000" in tcp, "units/examples/tcp.conf changed its example address"
        self.write_dropin("sockactd@.socket", "tcp.conf", tcp.replace("8000", str(self.port)))
        if not INSTALLED:  # otherwise the package's own copy in /usr/lib/python3 serves
            shutil.copytree(
                ROOT / "sockactd", self.code_dir / "sockactd",
                ignore=shutil.ignore_patterns("__pycache__"),
            )  # fmt: skip
            shutil.copytree(ROOT / "packaging" / "libexec", self.root / "libexec")
        self.boot_id_file.write_text(self._boot_id + "\n")
        _make_world_readable(self.root)

    def _checkout_dropin(self, unit: Path) -> str:
        text = _command_override(unit.read_text()).replace("/etc/sockactd/", f"{INNER}/etc/")
        env = f"Environment=PYTHONPATH={INNER}/code PYTHONDONTWRITEBYTECODE=1\n"
        return text + env

    def write_dropin(self, unit: str, name: str, text: str) -> None:
        """Add unit.d/name in the sandbox's unit directory (run daemon_reload() when booted)."""
        folder = self.unit_dir / f"{unit}.d"
        folder.mkdir(mode=0o755, exist_ok=True)
        (folder / name).write_text(text)

    def write_config(self, settings: Mapping[str, object], instance: str = INSTANCE) -> None:
        self.config_path(instance).write_text(toml_text(settings))
        self.config_path(instance).chmod(0o644)

    def write_code(self, module: str, source: str) -> None:
        """Put (or replace) a module the served app imports, readable by the dynamic user."""
        path = self.code_dir / f"{module}.py"
        path.write_text(source)
        path.chmod(0o644)

    @property
    def boot_id_file(self) -> Path:
        return self.root / "boot_id"

    # --- booting --------------------------------------------------------------------------
    def boot(self) -> None:
        if self.packaged:  # the overlays' unit dirs; boot_lines checks no host unit shows
            unit_path = hostfs.UNIT_PATH
            assert (self.root / "lib-units" / "test.target").is_file(), "minimal targets missing"
        else:
            unit_path = str(self.unit_dir)
            # a colon or a path outside the sandbox would load the host's units: never boot then
            assert ":" not in unit_path, unit_path
            assert self.unit_dir.resolve().parent == self.root.resolve(), unit_path
            assert (self.unit_dir / "test.target").is_file(), "minimal targets missing"
        assert not unit_path.endswith(":"), unit_path
        self._cgroup = _cgroup2_home_checked() / self.root.name
        self._cgroup.mkdir()
        script = self.root / "boot.sh"
        script.write_text(self._boot_script(unit_path))
        with (self.log_dir / "systemd.log").open("ab") as output:
            self._launcher = subprocess.Popen(
                ["/bin/sh", "-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh",
                 str(self._cgroup), "unshare", "--cgroup", "--pid", "--fork", "--mount",
                 "--mount-proc", "--propagation", "private", "/bin/sh", str(script)],
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_until(self._find_pid1, 10, "the sandbox's systemd to be forked")
        wait_until(self._is_up, BOOT_TIMEOUT, "the sandbox's systemd to finish booting")

    def _boot_script(self, unit_path: str) -> str:
        return (
            "set -e\n"
            "mount --make-rprivate /\n"
            "mount -t tmpfs tmpfs /run\n"
            f"mkdir {INNER}\n"
            f"mount --bind {self.root} {INNER}\n"
            f"mount --bind {self.boot_id_file} /proc/sys/kernel/random/boot_id\n"
            + (
                hostfs.boot_lines(INNER)  # the bind of root: the real file system, not an overlay
                if self.packaged
                else f"mount --bind {self.var_lib} /var/lib\nexport SYSTEMD_UNIT_PATH={unit_path}\n"
            )
            + "mount -t tmpfs tmpfs /sys/fs/cgroup\n"
            "mount -t cgroup2 none /sys/fs/cgroup\n"
            f"exec env container=sockactd-test {SYSTEMD} --system --unit=test.target\n"
        )

    def _find_pid1(self) -> bool:
        assert self._launcher is not None
        if self._launcher.poll() is not None:
            raise AssertionError(f"sandbox launcher exited: {self.log('systemd')}")
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

    # --- driving ------------------------------------------------------------------------------
    def nsenter(
        self, *argv: str, check: bool = True, timeout: float = 120, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the sandbox (its mount and pid namespaces, so its /run and PIDs).

        The working directory stays the caller's (a relative ./dist/... path works when the
        host directory is visible inside, as every path outside /etc, /usr, /var is).
        """
        assert self.systemd_pid, "sandbox not booted"
        result = subprocess.run(
            ["nsenter", "-t", str(self.systemd_pid), "-m", "-p", f"--wd={os.getcwd()}", *argv],
            capture_output=True, text=True, timeout=timeout, check=False, input=input,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}: {result.stdout}{result.stderr}"
            )
        return result

    run = nsenter

    def apt(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """apt-get ARGS inside (noninteractive, system PATH): installs into the overlays."""
        return self.run(
            "env", f"PATH={SYSPATH}", "DEBIAN_FRONTEND=noninteractive", "apt-get",
            "-o", "DPkg::Lock::Timeout=300", *args, check=check, timeout=timeout,
        )  # fmt: skip

    def systemctl(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self.nsenter("systemctl", "--no-pager", *args, check=check, timeout=timeout)

    def systemctl_background(self, *args: str) -> subprocess.Popen[bytes]:
        """Start a systemctl that may block (reload, stop); teardown reaps it if left running."""
        assert self.systemd_pid, "sandbox not booted"
        proc = subprocess.Popen(
            ["nsenter", "-t", str(self.systemd_pid), "-m", "-p", "systemctl", "--no-pager", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._background.append(proc)
        return proc

    def daemon_reload(self) -> None:
        self.systemctl("daemon-reload")

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.systemctl("show", unit, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def prop(self, unit: str, name: str) -> str:
        return self.show(unit, name).get(name, "")

    def wait_for(self, unit: str, name: str, value: str, timeout: float = 30) -> None:
        wait_until(
            lambda: self.prop(unit, name) == value,
            timeout,
            f"{unit} {name}={value} (now {self.prop(unit, name)!r}); log:\n{self.log(unit)}",
            interval=0.05,
        )

    def host_pids(self, unit: str) -> list[int]:
        """Host PIDs of every process in the unit's cgroup (empty when it has none).

        systemd removes a unit's cgroup once it is empty -- after a kill -9 of its main
        process, while a test polls this. os.walk skips a folder that went away between
        its parent's listing and its own; Path.rglob raised FileNotFoundError there.
        """
        assert self._cgroup is not None
        pids: list[int] = []
        for folder, _dirs, files in os.walk(self._cgroup):
            if os.path.basename(folder) != unit or "cgroup.procs" not in files:
                continue
            try:
                pids += [int(pid) for pid in Path(folder, "cgroup.procs").read_text().split()]
            except OSError as exc:  # gone meanwhile: ENOENT, or ENODEV once open
                if exc.errno not in (errno.ENOENT, errno.ENODEV):
                    raise
        return sorted(pids)

    # --- teardown -----------------------------------------------------------------------------
    def destroy(self) -> None:
        """kill -9 our PID 1, wait until its pid namespace is empty, remove what it left."""
        if self.systemd_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.systemd_pid, signal.SIGKILL)
            wait_until(lambda: not self._namespace_pids(), 20, "every sandbox process to exit")
        for proc in self._background:  # systemctl clients of the dead manager return at once
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            if proc.poll() is None:
                proc.kill()  # our own client, by its Popen
                proc.wait(timeout=10)
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
        for tmp in (Path("/tmp"), Path("/var/tmp")):
            for private in tmp.glob(f"systemd-private-{compact}-*"):
                shutil.rmtree(private, ignore_errors=True)

    def _namespace_pids(self) -> list[int]:
        left = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "ns" / "pid") == self._pid_ns:
                        left.append(int(entry.name))
        return left


def _cgroup2_home_checked() -> Path:
    home = _cgroup2_home()
    assert home is not None, "no writable cgroup2 hierarchy"
    return home


def _make_world_readable(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


@contextlib.contextmanager
def booted_sandbox(packaged: bool = False, address: str = "127.0.0.1") -> Iterator[Sandbox]:
    """A booted sandbox in a fresh /var/tmp/sockactd-test-* directory; removed afterwards.

    /var/tmp rather than pytest's tmp_path: tmp_path's parents are 0700 and the
    DynamicUser service must read the code and config from there. `packaged`: a package
    sandbox (overlays, see the module docstring); `address`: its loopback address.
    """
    root = Path(tempfile.mkdtemp(prefix="sockactd-test-", dir="/var/tmp"))
    box = Sandbox(root=root, port=free_port(address), packaged=packaged, address=address)
    try:
        box.prepare()
        box.boot()
        yield box
    finally:
        try:
            box.destroy()
        finally:
            if os.environ.get("SOCKACTD_KEEP_SANDBOX") != "1":
                shutil.rmtree(root, ignore_errors=True)
