"""The same bytes, any cuts, the same answers, over real TCP to a forked worker.

A sample of tests/data/http_streams.py: each stream is sent in one write, one byte
per write (TCP_NODELAY) and cut at seeded random points, then the client
half-closes and reads until the worker closes. The answers (status and what the app
saw, tests/apps/environ_echo.py) must be the same every time. The sample leaves out
streams the worker stops reading before their last byte (an error or a close in the
middle): bytes arriving after its close turn into a reset that may discard its
answers on the client side, whatever the server does right.
"""

from __future__ import annotations

import itertools
import random
import socket
from collections.abc import Iterator

import pytest

from tests.apps import environ_echo
from tests.data.http_streams import STREAMS
from tests.integration.serve_child import Served, serving
from tests.unit.worker.wire import responses

SAMPLE = [
    "one GET",
    "GET with fields",
    "POST whose body holds LF + SP/HTAB",
    "chunked with extensions, trailer, CR/LF/SP/HTAB in data",
    "pipelined GET, POST, chunked, GET",
    "empty lines before a request",
    "HTTP/1.0 keep-alive, then more",
    "absolute-form with another Host",
    "Expect: 100-continue",
    "valid, then an invalid Host",
    "valid, then two Hosts",
    "body over limit-post",
]
STREAM = {name: stream for name, stream, _ in STREAMS}


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serving(environ_echo.app, buffer_size=1024, limit_post=2000) as served:
        yield served


def send(port: int, chunks: list[bytes]) -> list[tuple[int, bytes]]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for chunk in chunks:
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        while data := sock.recv(65536):
            received += data
    return responses(bytes(received))


def random_cuts(stream: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    points = sorted(rng.sample(range(1, len(stream)), min(8, len(stream) - 1)))
    edges = [0, *points, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


def test_the_sample_names_streams_of_the_corpus() -> None:
    assert set(SAMPLE) <= STREAM.keys()


@pytest.mark.parametrize("name", SAMPLE)
def test_real_tcp_cuts_get_the_answers_of_one_write(served: Served, name: str) -> None:
    stream = STREAM[name]
    whole = send(served.port, [stream])
    assert whole and whole[0][0] == 200, whole
    assert send(served.port, [stream[i : i + 1] for i in range(len(stream))]) == whole
    for seed in (1, 2):
        assert send(served.port, random_cuts(stream, seed)) == whole, f"seed {seed}"
