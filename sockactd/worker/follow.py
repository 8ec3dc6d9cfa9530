"""A worker follows its master's death: it never serves on without a master.

Without ctypes (which costs milliseconds on the cold-start clock) and without
systemd: the master's pidfd (os.pidfd_open, through osapi) becomes readable when it
exits. While the app is imported (--lazy-apps), a helper thread waits on it and
ends the process at once: nothing has been accepted yet, and an import can take any
time. Once serving, serve() polls it with everything else and drains as for SIGTERM.
A master that re-executes itself (standard reload) keeps its PID, so its pidfd stays
quiet. Where pidfd_open is refused, PR_SET_PDEATHSIG is set through ctypes after the
first wake-up, as before. This module never serves and never talks to the master.
"""

from __future__ import annotations

import os
import select

from sockactd.app import load_app
from sockactd.errors import ExitCode
from sockactd.log import WARNING, get_logger, write_direct
from sockactd.osapi import RealKernel, csignal, raise_fd_limit, set_parent_death_signal

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    import _thread

    from sockactd.app import WSGIApp
    from sockactd.config.model import Config

__all__ = ["after_first_wakeup", "load_app_following", "open_master_pidfd", "watch_master"]

log = get_logger(__name__)


def open_master_pidfd(master_pid: int) -> int | None:
    """A pidfd of our master; None if it is gone already; -1 if pidfds are refused."""
    try:
        fd = RealKernel().pidfd_open(master_pid)
    except OSError:  # ENOSYS (Linux < 5.3) or a seccomp filter: after_first_wakeup uses prctl
        return -1 if os.getppid() == master_pid else None
    if fd is None:
        return None
    if os.getppid() != master_pid:  # gone, and its PID maybe someone else's by now
        os.close(fd)
        return None
    return fd


def load_app_following(config: Config, master_fd: int) -> WSGIApp:
    """load_app(), ending this process at once if the master dies meanwhile."""
    if master_fd < 0:
        return load_app(config)
    import _thread  # built in, already loaded: threading would cost start-up time

    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    gone = _thread.allocate_lock()
    gone.acquire()
    _thread.start_new_thread(_exit_if_master_dies, (master_fd, done_r, gone))
    try:
        return load_app(config)
    finally:
        os.write(done_w, b"!")
        gone.acquire()  # the helper has returned: the app runs single-threaded from here
        os.close(done_r)
        os.close(done_w)


def _exit_if_master_dies(master_fd: int, done_fd: int, finished: _thread.LockType) -> None:
    """Helper thread: wait for the app to load or the master to die, whichever comes first."""
    try:
        poller = select.poll()
        poller.register(master_fd, select.POLLIN)
        poller.register(done_fd, select.POLLIN)
        ready = {fd for fd, _ in poller.poll()}
        if done_fd not in ready:
            # Not through logging: the import may hold its locks, or be importing it.
            write_direct(WARNING, f"worker {os.getpid()}: its master is gone while the app "
                         "was loading; exiting")  # fmt: skip
            os._exit(ExitCode.FAILURE)
    finally:
        finished.release()


def after_first_wakeup(master_pid: int, master_fd: int) -> None:
    """What waits until the first client was served: see serve()'s `after_first_wakeup`."""
    if master_fd < 0:
        watch_master(master_pid)
    # The first workers were forked before the master raised the fd limit (run.py);
    # later ones inherit it, and this is a no-op for them.
    try:
        raise_fd_limit()
    except OSError as exc:
        log.debug("cannot raise the open-file limit: %s", exc)  # the master said so


def watch_master(master_pid: int) -> None:
    """Without a pidfd: die with the master (PR_SET_PDEATHSIG), and now if it is gone already.

    serve() calls this after its first wake-up (at most a second after it starts),
    not before: it needs ctypes, which costs milliseconds to import, while under socket
    activation the first client waits for the answer. A master that died in between
    is seen here, and this worker stops as the parent-death signal would have made it.
    """
    try:
        set_parent_death_signal(csignal.SIGTERM)
    except (OSError, ImportError) as exc:  # ctypes missing, or a seccomp filter refusing prctl
        # Not worth ending a serving worker over: under systemd the unit's cgroup is
        # stopped with the master anyway. Said once, so an operator knows.
        log.warning("worker %d cannot follow its master's death: %s", os.getpid(), exc)
    if os.getppid() != master_pid:
        RealKernel().kill(os.getpid(), csignal.SIGTERM)
