"""A throw-away PostgreSQL for a benchmark: Debian's server binaries, run as a child process.

`Postgres(directory)` is a context manager: `initdb` makes a cluster in `directory/data`,
`postgres -D` serves it on a UNIX socket in `directory` only (no TCP listener), and on
exit (also on an error) the postmaster is stopped by its PID with SIGINT (PostgreSQL's
fast shutdown), then its process group is killed if it has not exited in time.

postgres refuses to run as root. Run as root, the cluster belongs to Debian's `postgres`
system user (made by the postgresql-common package): `directory` is handed to it and
every server-side command runs through `setpriv`, which execs (no intermediate process),
so the PID we hold is the postmaster's. Run as anyone else, it runs as that user.
Clients connect through the socket with `trust` authentication as role `postgres`.
This module starts nothing on import and imports nothing of sockactd.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

PORT: Final = 5432  # only names the socket file (.s.PGSQL.5432) in our own directory
ROLE: Final = "postgres"
SYSTEM_USER: Final = "postgres"
# Settings for a benchmark of the application servers, not of the disk: commits return
# before the WAL reaches the disk (no corruption risk, the last ~0.6 s could be lost).
SETTINGS: Final = (
    "listen_addresses=",
    "max_connections=200",
    "synchronous_commit=off",
    "shared_buffers=128MB",
)


def bin_dir() -> Path:
    """Debian's newest installed PostgreSQL server binaries (/usr/lib/postgresql/N/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda path: [int(n) for n in re.findall(r"\d+", path.parent.parent.name)],
    )
    if not found:
        raise RuntimeError("no /usr/lib/postgresql/*/bin/postgres: install Debian's postgresql")
    return found[-1].parent


def as_user_argv(argv: Sequence[str], user: str | None) -> list[str]:
    """`argv` run as `user` through setpriv (which execs in place), or as is for None."""
    if user is None:
        return list(argv)
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv]


class Postgres:
    """A private PostgreSQL cluster under `directory`; `host` is its socket directory."""

    def __init__(self, directory: Path, log: Path) -> None:
        self.host = directory
        self.data = directory / "data"
        self.log_path = log
        self.bin = bin_dir()
        self.user = SYSTEM_USER if os.geteuid() == 0 else None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> Postgres:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        """initdb, then postgres -D; returns once the server accepts connections."""
        self.host.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.host, entry.pw_uid, entry.pw_gid)
            # the run's temporary directory is root's 0700: let the user pass through it
            parent = self.host.parent
            os.chmod(parent, os.stat(parent).st_mode | 0o111)
        self._log = self.log_path.open("ab")
        initdb = [str(self.bin / "initdb"), "-D", str(self.data), "-U", ROLE, "--auth=trust"]
        initdb += ["--no-sync", "--encoding=UTF8", "--locale=C"]
        self._run(initdb)
        argv = [str(self.bin / "postgres"), "-D", str(self.data), "-k", str(self.host)]
        argv += ["-p", str(PORT)]
        for setting in SETTINGS:
            argv += ["-c", setting]
        self.process = subprocess.Popen(
            as_user_argv(argv, self.user),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.host,
            start_new_session=True,  # its own group: a final SIGKILL reaches its backends too
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe = [str(self.bin / "pg_isready"), "-q", "-h", str(self.host), "-p", str(PORT)]
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited:\n{self.log_tail()}")
            if subprocess.run([*probe, "-U", ROLE], check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not accept connections:\n{self.log_tail()}")

    def create_database(self, name: str) -> None:
        argv = [str(self.bin / "createdb"), "-h", str(self.host), "-p", str(PORT), "-U", ROLE]
        subprocess.run([*argv, name], check=True, stdout=self._log, stderr=subprocess.STDOUT)

    def pids(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, ...)."""
        if self.process is None:
            return []
        found = [self.process.pid]
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{self.process.pid}/task"):
                with open(f"/proc/{self.process.pid}/task/{task}/children") as children:
                    found += [int(child) for child in children.read().split()]
        return found

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown by the postmaster's PID; SIGKILL to its group past `timeout`."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    @staticmethod
    def version() -> str:
        """`15.18 (Debian 15.18-0+deb12u1)`: what `postgres --version` says after its name."""
        done = subprocess.run([str(bin_dir() / "postgres"), "--version"], capture_output=True,
                              text=True, check=False)  # fmt: skip
        return done.stdout.strip().removeprefix("postgres (PostgreSQL) ")

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _run(self, argv: Sequence[str]) -> None:
        done = subprocess.run(
            as_user_argv(argv, self.user), stdout=self._log, stderr=subprocess.STDOUT,
            cwd=self.host, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{self.log_tail()}")
