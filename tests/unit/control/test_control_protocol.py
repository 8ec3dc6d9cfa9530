"""control/protocol.py: request and response lines, as tables."""

from __future__ import annotations

import json

import pytest

from sockactd import __version__
from sockactd.control.protocol import (
    PROTOCOL_VERSION,
    Command,
    ControlRequest,
    LineReader,
    Peer,
    Response,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    nesting_depth,
    predates_versions,
)
from sockactd.errors import ControlError
from sockactd.modes import ReloadMode

RELOAD = Command.RELOAD
CHAIN, WORKERS, STANDARD = ReloadMode.CHAIN, ReloadMode.WORKERS, ReloadMode.STANDARD
STATUS = Command.STATUS


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"cmd": "status"}', ControlRequest(STATUS)),
        (b'{"cmd": "reload"}', ControlRequest(RELOAD)),
        (
            b'{"cmd":"reload","mode":"chain","wait":true}',
            ControlRequest(RELOAD, CHAIN, True),
        ),
        (b'{"cmd":"reload","mode":"workers"}', ControlRequest(RELOAD, WORKERS)),
        (
            b'{"cmd":"reload","mode":"standard","wait":false}',
            ControlRequest(RELOAD, STANDARD),
        ),
        (b'{"cmd":"reload","mode":null,"timeout":30}', ControlRequest(RELOAD, timeout=30.0)),
        (b'{"cmd":"reload","timeout":0.5}\r\n', ControlRequest(RELOAD, timeout=0.5)),
    ],
)
def test_decode_request(line: bytes, expected: ControlRequest) -> None:
    assert decode_request(line) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"", "request is not valid JSON"),
        (b"reload", "request is not valid JSON"),
        (b"\xff\xfe", "request is not valid JSON"),
        (b"[1, 2]", "request must be a JSON object, got list"),
        (b"{}", 'request has no "cmd" string'),
        (b'{"cmd": 3}', 'request has no "cmd" string'),
        (b'{"cmd": "explode"}', "unknown command 'explode'"),
        (b'{"cmd": "status", "wait": true}', "unknown field(s) in status request: wait"),
        (b'{"cmd": "reload", "mood": "chain"}', "unknown field(s) in reload request: mood"),
        (b'{"cmd": "reload", "mode": "fast"}', "unknown reload mode 'fast'"),
        (b'{"cmd": "reload", "mode": 1}', "unknown reload mode 1"),
        (b'{"cmd": "reload", "wait": "yes"}', '"wait" must be true or false'),
        (b'{"cmd": "reload", "wait": 1}', '"wait" must be true or false'),
        (b'{"cmd": "reload", "timeout": "5"}', '"timeout" must be a number'),
        (b'{"cmd": "reload", "timeout": true}', '"timeout" must be a number'),
        (b'{"cmd": "reload", "timeout": -1}', '"timeout" must be a finite number >= 0'),
        (b'{"cmd": "reload", "timeout": Infinity}', '"timeout" must be a finite number >= 0'),
        # issue 12 item 3: this line raised RecursionError, which ended the master
        (b"[" * 1000 + b"]" * 1000, "nests arrays or objects deeper than 8 levels"),
        (b"[" * 100_000, "nests arrays or objects deeper than 8 levels"),
        (b'{"cmd": "status", "x": ' + b"{" * 9 + b"}" * 9 + b"}", "deeper than 8 levels"),
    ],
)
def test_decode_request_refuses(line: bytes, message: str) -> None:
    with pytest.raises(ControlError) as caught:
        decode_request(line)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "request_",
    [
        ControlRequest(STATUS),
        ControlRequest(RELOAD),
        ControlRequest(RELOAD, CHAIN, True, 300.0),
        ControlRequest(RELOAD, STANDARD, False, None),
    ],
)
def test_request_round_trip(request_: ControlRequest) -> None:
    line = encode_request(request_)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_request(line) == request_


def test_peer_never_travels_and_does_not_affect_equality() -> None:
    with_peer = ControlRequest(RELOAD, CHAIN, peer=Peer(pid=1, uid=0, gid=0))
    assert b"uid" not in encode_request(with_peer)
    assert with_peer == ControlRequest(RELOAD, CHAIN)


@pytest.mark.parametrize(
    "response",
    [
        Response(ok=True, message="reload queued"),
        Response(ok=False, message="reload aborted: worker 12 exited (status 4)"),
        Response(ok=True, message="", data={"phase": "serving", "workers": [{"pid": 3}]}),
        Response(ok=True, message="ünïcode ✓"),
    ],
)
def test_response_round_trip(response: Response) -> None:
    line = encode_response(response)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_response(line) == response


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"nope", "response is not valid JSON"),
        (b'"ok"', "response must be a JSON object"),
        (b'{"ok": "yes", "message": ""}', 'response needs "ok"'),
        (b'{"ok": true}', 'response needs "ok"'),
        (b'{"ok": true, "message": "", "data": [1]}', 'response "data" must be an object'),
    ],
)
def test_decode_response_refuses(line: bytes, message: str) -> None:
    with pytest.raises(ControlError) as caught:
        decode_response(line)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b'{"a":1}\n'], b'{"a":1}'),
        ([b'{"a":', b"1}", b"\n"], b'{"a":1}'),
        ([b"a\nb\n"], b"a"),
        ([b"partial"], None),
        ([b"x" * 15 + b"\n"], b"x" * 15),  # exactly the limit, newline included
    ],
)
def test_line_reader(chunks: list[bytes], expected: bytes | None) -> None:
    reader = LineReader(limit=16)
    results = [reader.feed(chunk) for chunk in chunks]
    assert results[-1] == expected


@pytest.mark.parametrize("chunks", [[b"x" * 16], [b"x" * 10, b"x" * 10], [b"x" * 16 + b"\n"]])
def test_line_reader_limit(chunks: list[bytes]) -> None:
    reader = LineReader(limit=16)
    with pytest.raises(ControlError, match="request longer than 16 bytes"):
        for chunk in chunks:
            reader.feed(chunk)


# --- versions (protocol.py, "Versions") ---------------------------------------------


def test_requests_carry_the_protocol_and_the_client_version() -> None:
    line = json.loads(encode_request(ControlRequest(STATUS)))
    assert line == {"cmd": "status", "protocol": PROTOCOL_VERSION, "client": __version__}
    assert json.loads(encode_request(ControlRequest(STATUS), versioned=False)) == {"cmd": "status"}


def test_a_request_of_an_older_or_equal_protocol_is_understood() -> None:
    assert decode_request(b'{"cmd": "status"}') == ControlRequest(STATUS)  # protocol 0
    line = b'{"cmd": "reload", "mode": "chain", "protocol": 1, "client": "0.0.1"}'
    assert decode_request(line) == ControlRequest(RELOAD, CHAIN)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            b'{"cmd": "status", "protocol": 7, "client": "9.0"}',
            f"versions differ: the client (sockactd 9.0) speaks control protocol 7, this "
            f"server (sockactd {__version__}) speaks protocol {PROTOCOL_VERSION}",
        ),
        (b'{"cmd": "reload", "protocol": 7}', "the client (sockactd unknown)"),
        (b'{"cmd": "status", "protocol": "1"}', '"protocol" must be a whole number'),
        (b'{"cmd": "status", "protocol": true}', '"protocol" must be a whole number'),
        (b'{"cmd": "status", "protocol": 1, "client": 1}', '"client" must be a version string'),
    ],
)
def test_a_newer_protocol_is_refused_saying_the_versions_differ(line: bytes, message: str) -> None:
    with pytest.raises(ControlError) as caught:
        decode_request(line)
    assert message in str(caught.value)


def test_responses_carry_the_server_version() -> None:
    line = encode_response(Response(True, "ok"))
    assert json.loads(line)["protocol"] == PROTOCOL_VERSION
    decoded = decode_response(line)
    assert (decoded.protocol, decoded.server) == (PROTOCOL_VERSION, __version__)
    old = decode_response(b'{"ok": true, "message": "", "data": null}')
    assert (old.protocol, old.server) == (None, None)


OLD_REFUSAL = (
    b'{"ok": false, "message": "bad request: unknown field(s) in status request: '
    b'client, protocol", "data": null}'
)


def test_a_protocol_0_refusal_of_the_version_fields_is_recognised() -> None:
    assert predates_versions(decode_response(OLD_REFUSAL))
    assert not predates_versions(Response(False, "unknown field(s) in reload request: mood"))
    assert not predates_versions(decode_response(encode_response(Response(False, "protocol"))))


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("", 0),
        ('{"cmd": "status"}', 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[{{{"}', 1),  # brackets in strings do not count
        ('{"a": "\\"[[["}', 1),  # nor after an escaped quote
        ('["\\\\", [[]]]', 3),  # an escaped backslash ends before the quote
        ("]]][[", 2),
    ],
)
def test_nesting_depth(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth
