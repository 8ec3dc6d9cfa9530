"""Signals to the master: handlers that do nothing, and a table of what each means.

The handler exists only so CPython writes the signal number to the wakeup fd;
the master's selector sees the byte and acts in the loop (never in a handler:
no logging, no locks, no fork there).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from sockactd.modes import ReloadMode

__all__ = ["SIGNAL_ACTIONS", "Reload", "Scale", "SignalInbox", "Stop", "Wake"]


@dataclass(frozen=True, slots=True)
class Stop:
    graceful: bool


@dataclass(frozen=True, slots=True)
class Reload:
    mode: ReloadMode | None  # None: the configured reload-mode


@dataclass(frozen=True, slots=True)
class Scale:
    delta: int


@dataclass(frozen=True, slots=True)
class Wake:
    """Only wakes the loop (SIGCHLD: exits are read from pidfds)."""


Action = Stop | Reload | Scale | Wake

SIGNAL_ACTIONS: Final[Mapping[signal.Signals, Action]] = {
    signal.SIGTERM: Stop(graceful=True),
    signal.SIGINT: Stop(graceful=False),
    signal.SIGQUIT: Stop(graceful=False),
    signal.SIGHUP: Reload(mode=None),
    # a mode's own signal, if it has one, is said in its row (sockactd/modes.py)
    **{signal.Signals[m.signal]: Reload(mode=m) for m in ReloadMode.members() if m.signal},
    signal.SIGTTIN: Scale(+1),
    signal.SIGTTOU: Scale(-1),
    signal.SIGCHLD: Wake(),
}


def _noop(signum: int, frame: object) -> None:
    """Present so CPython delivers the signal to the wakeup fd; work happens in the loop."""


class SignalInbox:
    def __init__(self, signums: Iterable[signal.Signals] = SIGNAL_ACTIONS) -> None:
        self._signums = tuple(signums)
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in self._signums:
            signal.signal(signum, _noop)
        # A standard reload blocks these across execve; the new image unblocks them
        # here, once its handlers exist, and the pending ones are delivered.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self._signums)

    def fileno(self) -> int:
        return self._read_fd

    def drain(self) -> list[signal.Signals]:
        try:
            raw = os.read(self._read_fd, 256)
        except BlockingIOError:
            return []
        return [signal.Signals(n) for n in dict.fromkeys(raw)]  # coalesced, in arrival order

    def block_for_exec(self) -> None:
        """Block our signals so none hits a default action during execve."""
        signal.pthread_sigmask(signal.SIG_BLOCK, self._signums)
