"""The signals blocked while sockactd starts are exactly the ones the master acts on."""

from __future__ import annotations

from sockactd.master.signals import SIGNAL_ACTIONS
from sockactd.osapi import MASTER_SIGNALS


def test_blocked_at_start_equals_the_signal_table() -> None:
    assert sorted(MASTER_SIGNALS) == sorted(SIGNAL_ACTIONS)
    assert len(set(MASTER_SIGNALS)) == len(MASTER_SIGNALS)
