"""The same bytes, any cuts, the same answers: HttpHandler sans-IO over tests/data's streams.

For each stream, the answers (status and what the app saw: environ keys and the
body it read, tests/apps/environ_echo.py) when it arrives in one read must equal
those when it arrives one byte per read, and when hypothesis cuts it at random
points. Seeded (derandomize) and bounded, so it runs in seconds and the same way
every time.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.apps.environ_echo import app
from tests.data.http_streams import STREAMS
from tests.unit.worker.wire import exchange, responses

SETTINGS = {"buffer_size": 1024, "limit_post": 2000}


def answers(chunks: list[bytes]) -> list[tuple[int, bytes]]:
    return responses(exchange(app, chunks, **SETTINGS))


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted(set(points)), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges) if b > a]


IDS = [name for name, _, _ in STREAMS]


@pytest.mark.parametrize(("name", "stream", "statuses"), STREAMS, ids=IDS)
def test_one_byte_per_read_gets_the_answers_of_one_read(
    name: str, stream: bytes, statuses: list[int], http_checks: str
) -> None:
    whole = answers([stream])
    assert [status for status, _ in whole] == statuses, name
    assert answers([stream[i : i + 1] for i in range(len(stream))]) == whole


@pytest.mark.parametrize(("name", "stream"), [s[:2] for s in STREAMS], ids=IDS)
@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_cuts_get_the_answers_of_one_read(
    name: str, stream: bytes, data: st.DataObject
) -> None:
    points = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=12), label="cuts")
    assert answers(cut(stream, points)) == answers([stream])
