"""Which strategy runs each reload mode: the one place that names concrete strategies.

sockactd/modes.py declares the modes (it sits on the start-up path, so it
cannot import the strategies); this table pairs each with the strategy that
runs it. The master asks `strategy_for()` and never names a strategy class.
tests/unit/test_reload_modes.py fails when a mode has no row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from sockactd.modes import ReloadMode
from sockactd.reload.all_workers import AllWorkersReload
from sockactd.reload.chain import ChainReload
from sockactd.reload.reexec import ReexecReload
from sockactd.reload.refused import RefusedReload

if TYPE_CHECKING:
    from sockactd.config.model import Config
    from sockactd.reload.base import ReloadStrategy

__all__ = ["STRATEGIES", "refused", "standard_second_half", "strategy_for"]


def _standard(config: Config) -> ReloadStrategy:
    return ReexecReload(drain_first=config.drain_first)


def _workers(config: Config) -> ReloadStrategy:
    return AllWorkersReload()


def _chain(config: Config) -> ReloadStrategy:
    return ChainReload()


# Mode -> a new strategy for one reload, given the configuration the reload runs with.
STRATEGIES: Final[Mapping[ReloadMode, Callable[[Config], ReloadStrategy]]] = {
    ReloadMode.STANDARD: _standard,
    ReloadMode.WORKERS: _workers,
    ReloadMode.CHAIN: _chain,
}


def strategy_for(mode: ReloadMode, config: Config) -> ReloadStrategy:
    """A fresh strategy to run one `mode` reload with `config`."""
    return STRATEGIES[mode](config)


def refused(reason: str) -> ReloadStrategy:
    """A reload that ends ABORTED with `reason` the moment it begins (see refused.py)."""
    return RefusedReload(reason)


def standard_second_half() -> ReloadStrategy:
    """What the new master image runs after a standard reload's execve: renew its workers."""
    return AllWorkersReload(mode=ReloadMode.STANDARD)
