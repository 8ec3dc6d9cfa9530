"""The reload modes: one closed set, declared once, parsed at every edge.

A mode's row says everything the rest of sockactd decides by mode: its name
(on the command line, in the configuration, in the control protocol, in logs
and metrics), whether it needs `lazy-apps` to load new code, the signal that
asks for it (if any), the setting that names its trigger files (if any), and
its text in the man pages. The edges turn text into a mode with `parse()` --
`sockactctl --mode`, the control protocol's "mode", the `reload-mode` setting,
the queued modes a standard reload hands to the next master image -- so an
unknown name is an error there, and every other module holds a `ReloadMode`.

This module is on the start-up path (config/load.py and sockactctl import it):
it imports no strategy. Which strategy runs a mode is said in one place above
it, reload/registry.py. Adding a mode: docs/ARCHITECTURE.md, "Reload modes".
"""

from __future__ import annotations

from sockactd.symbol import Symbol

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from typing import ClassVar

__all__ = ["ReloadMode"]


class ReloadMode(Symbol):
    """One reload mode; the members below are all there are."""

    __slots__ = ("man", "needs_lazy_apps", "signal", "trigger")

    value: str  # the mode's name everywhere outside this module: "chain"
    needs_lazy_apps: bool  # True: refused while the app is preloaded in the master
    signal: str | None  # the signal (by name) that asks for this mode; None: only SIGHUP's default
    trigger: str | None  # the setting naming this mode's trigger files; None: it has none
    man: str  # what the mode does, for the man pages (`code` is set in bold)

    STANDARD: ClassVar[ReloadMode]
    WORKERS: ClassVar[ReloadMode]
    CHAIN: ClassVar[ReloadMode]

    def __init__(
        self,
        name: str,
        value: str,
        *,
        needs_lazy_apps: bool,
        signal: str | None,
        trigger: str | None,
        man: str,
    ) -> None:
        super().__init__(name, value)
        for field, given in (
            ("needs_lazy_apps", needs_lazy_apps),
            ("signal", signal),
            ("trigger", trigger),
            ("man", man),
        ):
            object.__setattr__(self, field, given)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every mode's name, in declaration order ("standard", "workers", "chain")."""
        return tuple(mode.value for mode in cls.members())

    @classmethod
    def parse(cls, text: str) -> ReloadMode:
        """The mode named `text`; ValueError naming the known modes for anything else."""
        for mode in cls.members():
            if mode.value == text:
                return mode
        raise ValueError(f"unknown reload mode {text!r} (expected one of {', '.join(cls.names())})")

    def __str__(self) -> str:
        return self.value


ReloadMode.STANDARD = ReloadMode(
    "STANDARD",
    "standard",
    needs_lazy_apps=False,
    signal="SIGUSR2",
    trigger="touch-reload",
    man="The master re-executes itself in place (same PID, so systemd keeps tracking it) "
    "with a new interpreter, configuration and code. It first runs `sockactd --check` in a "
    "separate process; broken code or configuration never replaces a working master. The "
    "sockets and the old workers are handed over to the new image and keep serving until "
    "its new generation of workers is ready; then the old workers are retired. With "
    "`drain-first`, the old workers are stopped before the new generation starts "
    "(uWSGI's behaviour), which leaves a gap in service.",
)
ReloadMode.WORKERS = ReloadMode(
    "WORKERS",
    "workers",
    needs_lazy_apps=True,
    signal="SIGUSR1",
    trigger="touch-workers-reload",
    man="A whole new generation of workers is started; the old generation is retired once "
    "every new worker is ready. Needs `lazy-apps`: with the application preloaded in "
    "the master, this mode is refused.",
)
ReloadMode.CHAIN = ReloadMode(
    "CHAIN",
    "chain",
    needs_lazy_apps=True,
    signal=None,
    trigger="touch-chain-reload",
    man="One worker at a time: a replacement is started first, and the old worker is "
    "retired only after the replacement reported ready; each step may take up to "
    "`ready-timeout` seconds. Needs `lazy-apps`, like workers.",
)
