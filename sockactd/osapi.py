"""The kernel seam: the few process calls the master makes, behind one object.

Only this module forks, execs, spawns, signals and reaps (tests/unit/test_kernel_seam.py
holds every other module to it). The master and the reload strategies receive a
`Kernel`; unit tests give them a fake one that records what was asked and lets the
test decide what the world did. A worker, which only ever runs after a real fork,
uses `RealKernel` directly.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    import signal
    import signal as csignal
    import subprocess
    from collections.abc import Mapping, Sequence
    from typing import NoReturn, Protocol

    class Kernel(Protocol):
        def fork(self) -> int: ...
        def spawn(
            self, argv: Sequence[str], env: Mapping[str, str], cwd: str, output: int
        ) -> int: ...
        def execve(self, path: str, argv: Sequence[str], env: Mapping[str, str]) -> NoReturn: ...
        def kill(self, pid: int, sig: signal.Signals) -> None: ...
        def reap(self, pid: int) -> int | None: ...
        def pidfd_open(self, pid: int) -> int | None: ...
        def monotonic(self) -> float: ...

else:
    # `csignal` is the C module under signal.py: the same functions and constants, without
    # signal.py's enums (docs/ARCHITECTURE.md, "Start-up order").
    import _signal as csignal


__all__ = [
    "MASTER_SIGNALS",
    "Kernel",
    "RealKernel",
    "csignal",
    "describe_status",
    "raise_fd_limit",
    "set_parent_death_signal",
]

PR_SET_PDEATHSIG = 1

# The signals the master acts on (master/signals.py says what each means). run() blocks
# them before it forks the first workers and the master's SignalInbox unblocks them once
# its handlers exist, so one sent in between waits instead of ending the master.
# Workers forked in that window unblock them too, after installing their own handlers.
MASTER_SIGNALS = (
    csignal.SIGTERM,
    csignal.SIGINT,
    csignal.SIGQUIT,
    csignal.SIGHUP,
    csignal.SIGUSR1,
    csignal.SIGUSR2,
    csignal.SIGTTIN,
    csignal.SIGTTOU,
    csignal.SIGCHLD,
)


class RealKernel:
    def __init__(self) -> None:
        self._spawned: dict[int, subprocess.Popen[bytes]] = {}  # by pid, until reaped

    def fork(self) -> int:
        return os.fork()

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: str, output: int) -> int:
        """Start `argv` in `cwd` (stdin /dev/null, stdout and stderr to the fd `output`,
        no other fd of ours); return its pid at once. Reap it with `reap`."""
        import subprocess  # the master's reload path, long after start-up

        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=env,
            close_fds=True, cwd=cwd,
        )  # fmt: skip
        self._spawned[process.pid] = process
        return process.pid

    def execve(self, path: str, argv: Sequence[str], env: Mapping[str, str]) -> NoReturn:
        """Replace this process's image (same PID). Returns only by raising OSError."""
        os.execve(path, list(argv), env)

    def kill(self, pid: int, sig: signal.Signals) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # already gone; its exit is reported through the pidfd

    def reap(self, pid: int) -> int | None:
        """Wait status of `pid` if it has exited, else None. Never blocks."""
        try:
            reaped, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            reaped, status = pid, -1  # reaped elsewhere (cannot happen in the master; be safe)
        if reaped != pid:
            return None
        process = self._spawned.pop(pid, None)
        if process is not None:  # so that it never waits for the pid again
            process.returncode = os.waitstatus_to_exitcode(status) if status >= 0 else -1
        return status

    def pidfd_open(self, pid: int) -> int | None:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        os.set_inheritable(fd, False)
        return fd

    def monotonic(self) -> float:
        return time.monotonic()


def describe_status(status: int) -> str:
    """'exit 0', 'exit 4', 'killed by SIGKILL' for a waitpid status."""
    if status < 0:
        return "unknown exit"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        import signal  # the master's reporting path, after start-up

        try:
            return f"killed by {signal.Signals(sig).name}"
        except ValueError:
            return f"killed by signal {sig}"
    return f"exit {os.WEXITSTATUS(status)}"


def set_parent_death_signal(sig: int) -> None:
    """Ask the kernel to send `sig` to this process when its parent (the master) dies."""
    import ctypes  # only here: workers call this once they served their first wake-up

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one; return (soft before, soft now).

    The soft limit is often 1024 (systemd's default, kept low for programs that still
    use select()); a server holding idle connections needs more. Raises OSError when
    the kernel refuses. `resource` is a C module that costs time to load: callers
    call this off the first client's clock.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard  # the kernel's nr_open
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return soft, target
    return soft, soft
