"""sockactd.symbol.Symbol: the enum stand-in on the cold-start path."""

from __future__ import annotations

import copy
import pickle
from typing import ClassVar

import pytest

from sockactd.errors import ExitCode
from sockactd.symbol import Symbol
from sockactd.worker.status import FrameKind


class Colour(Symbol):
    RED: ClassVar[Colour]
    BLUE: ClassVar[Colour]


Colour.RED = Colour("RED", "red")
Colour.BLUE = Colour("BLUE", 2)


def test_members_in_the_order_they_were_made() -> None:
    assert Colour.members() == [Colour.RED, Colour.BLUE]
    names = [kind.name for kind in FrameKind.members()]
    assert names == ["READY", "BOOT_FAILED", "DRAINING", "MODULES"]


def test_a_member_has_its_name_value_and_a_readable_repr() -> None:
    assert (Colour.BLUE.name, Colour.BLUE.value) == ("BLUE", 2)
    assert repr(Colour.RED) == "<Colour.RED: 'red'>"


def test_members_are_read_only() -> None:
    with pytest.raises(AttributeError, match=r"Colour\.RED is read-only"):
        Colour.RED.value = "green"  # type: ignore[misc]


def test_copies_and_pickles_are_the_member_itself() -> None:
    # identity is how members are compared (`is`), so a copy must not be a new object
    assert copy.copy(Colour.RED) is Colour.RED
    assert copy.deepcopy({"c": Colour.BLUE})["c"] is Colour.BLUE
    assert pickle.loads(pickle.dumps(FrameKind.READY)) is FrameKind.READY


def test_members_hash_by_identity() -> None:
    assert {Colour.RED: 1, Colour.BLUE: 2}[Colour.BLUE] == 2
    assert Colour("RED", "red") != Colour.RED  # another object, whatever its fields


def test_exit_codes_are_plain_ints_listed_by_name() -> None:
    assert ExitCode.members()["CONFIG_INVALID"] == ExitCode.CONFIG_INVALID == 78
    assert sorted(ExitCode.members().values()) == [0, 1, 64, 65, 69, 70, 73, 75, 78]
