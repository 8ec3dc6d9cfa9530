"""Channel: one client socket, MSG_DONTWAIT I/O with our own bounded waits."""

from __future__ import annotations

import _socket
import socket
import threading

import pytest

from sockactd.worker.channel import Channel


@pytest.mark.parametrize(
    ("address", "peer"),
    [
        (("127.0.0.1", 40000), ("127.0.0.1", "40000")),
        (("::1", 40000, 0, 0), ("::1", "40000")),
        ("", ("", "")),  # a UNIX socket client has no address
        (b"", ("", "")),
    ],
)
def test_peer_as_strings(address: object, peer: tuple[str, str]) -> None:
    left, right = socket.socketpair()
    with left, right:
        assert Channel(left, address, 1.0, tcp=False).peer == peer


@pytest.mark.parametrize("size", [0, 1, 100, 4 * 1024 * 1024])
def test_send_delivers_everything_even_when_the_kernel_takes_part(size: int) -> None:
    # A bare _socket.socket, as the worker uses; a small send buffer forces partial sends.
    left, right = socket.socketpair()
    raw = _socket.socket(left.family, left.type, 0, left.detach())
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    received = bytearray()

    def read_all() -> None:
        while chunk := right.recv(65536):
            received.extend(chunk)

    reader = threading.Thread(target=read_all)
    reader.start()
    channel = Channel(raw, "", 10.0, tcp=False)
    try:
        channel.send(data)
    finally:
        channel.close()
        reader.join(10)
        right.close()
    assert not reader.is_alive()
    assert bytes(received) == data


def test_send_times_out_when_nobody_reads() -> None:
    left, right = socket.socketpair()
    with right:
        channel = Channel(left, "", 0.2, tcp=False)
        try:
            with pytest.raises(TimeoutError):
                channel.send(b"x" * (16 * 1024 * 1024))
        finally:
            channel.close()


def test_recv_nowait_answers_none_when_nothing_is_there() -> None:
    left, right = socket.socketpair()
    with right:
        channel = Channel(left, "", 1.0, tcp=False)
        try:
            assert channel.recv_nowait() is None
            right.sendall(b"abc")
            assert channel.recv_nowait() == b"abc"
            right.shutdown(socket.SHUT_WR)
            assert channel.recv_nowait() == b""
        finally:
            channel.close()


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname(), timeout=10)
        accepted, _ = server.accept()
    return accepted, client


@pytest.mark.parametrize(
    ("head", "body", "last"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", b"hello", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b"", True),
        (b"HTTP/1.1 200 OK\r\n\r\n", b"x" * 200_000, True),  # over the join limit
        (b"HTTP/1.1 200 OK\r\n\r\n", b"hello", False),
    ],
)
def test_send_parts_then_close_delivers_everything_on_tcp(
    head: bytes, body: bytes, last: bool
) -> None:
    # `last` holds the bytes back (MSG_MORE) until the close sends them with the FIN
    served, client = _tcp_pair()
    received = bytearray()

    def read_all() -> None:
        while chunk := client.recv(65536):
            received.extend(chunk)

    reader = threading.Thread(target=read_all)
    with client:
        reader.start()
        channel = Channel(served, ("127.0.0.1", 1), 10.0, tcp=True)
        try:
            channel.send_parts(head, body, last)
        finally:
            channel.close()
            reader.join(10)
    assert not reader.is_alive()
    assert bytes(received) == head + body
