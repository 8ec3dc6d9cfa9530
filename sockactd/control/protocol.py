"""The control socket's wire format: one JSON object per line, each way.

A client connects, writes one request line, reads one response line, and the
server closes the connection. This module is pure (bytes in, records out, no
sockets, no clocks), shared by server.py and client.py.

Request::

    {"cmd": "reload", "mode": "standard" | "workers" | "chain" | null,
     "wait": true | false, "timeout": <seconds> | null, "protocol": 1, "client": "0.1.1"}
    {"cmd": "status", "protocol": 1, "client": "0.1.1"}

`mode` is a mode's name (sockactd/modes.py), parsed here into a ReloadMode: an
unknown one is refused. null means the server's configured `reload-mode`.
`timeout` is how long the caller will wait for the answer (informational: the
master may log it; the client enforces it). Unknown fields are refused, so a
typo never goes unnoticed.

Response::

    {"ok": true | false, "message": "<one line for humans>", "data": {...} | null,
     "protocol": 1, "server": "0.1.1"}

Versions. `protocol` is this format's version (PROTOCOL_VERSION); `client` and
`server` are the sockactd versions of each side, for messages only. Protocol 0
is the format before versions existed: the same fields without these, and a
server that refuses fields it does not know. So the two sides of any pair of
versions either work or say that they differ:
* a server takes every protocol up to its own (a request without "protocol"
  is protocol 0) and refuses a newer one with a message naming both versions;
* a client sends its protocol; a protocol-0 server refuses the unknown fields,
  and the client (client.py) repeats the request without them -- a refused
  request changed nothing;
* a response's extra fields are ignored by older clients.

For `status`, `data` is a `StatusData` (layout below). The server fills the
peer credentials of a request from SO_PEERCRED; they never travel on the wire.

Why ~330 lines: a third of it is this header and the status layout (the TypedDicts
the master fills and sockactctl renders); the wire format is one contract between
two programs of possibly different versions, kept in one file.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

from sockactd import __version__
from sockactd.errors import ControlError
from sockactd.modes import ReloadMode

__all__ = [
    "MAX_DEPTH",
    "MAX_LINE",
    "PROTOCOL_VERSION",
    "Command",
    "ControlRequest",
    "LastReloadData",
    "LineReader",
    "Peer",
    "ReloadProgressData",
    "Response",
    "StatusData",
    "WorkerStatusData",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "nesting_depth",
    "predates_versions",
]

MAX_DEPTH: Final = 8  # nested arrays/objects in one line; a status reply needs 4
MAX_LINE: Final = 64 * 1024  # bytes, newline included; a status reply for 1000 workers fits
PROTOCOL_VERSION: Final = 1  # raise when a change would confuse the other side; see above


class Command(enum.StrEnum):
    RELOAD = "reload"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Peer:
    """Credentials of the connected process, from SO_PEERCRED (struct ucred)."""

    pid: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class ControlRequest:
    command: Command
    mode: ReloadMode | None = None  # reload only; None = the configured reload-mode
    wait: bool = False  # reload only; answer when the reload is done, not when queued
    timeout: float | None = None  # how long the caller waits; None = forever
    peer: Peer | None = field(default=None, compare=False)  # set by the server


@dataclass(frozen=True, slots=True)
class Response:
    ok: bool
    message: str
    data: Mapping[str, Any] | None = None
    # Filled in by decode_response from the server's line; None from a protocol-0 server.
    protocol: int | None = field(default=None, compare=False)
    server: str | None = field(default=None, compare=False)  # its sockactd version


# --- status layout (the master fills it; `sockactctl status` renders it) -----------


class WorkerStatusData(TypedDict):
    pid: int
    generation: int
    state: str  # a WorkerState value: "booting", "serving", "draining", ...
    requests: int  # requests served (from the worker's Board)
    busy: int  # requests in progress right now
    rss_bytes: int | None  # resident memory, None when /proc could not be read
    uptime: float  # seconds since the worker was forked


class ReloadProgressData(TypedDict):
    mode: str  # a ReloadMode's name: "standard" | "workers" | "chain"
    progress: str  # the STATUS= text, e.g. "chain reload: 2/4 workers on generation 5"


class LastReloadData(TypedDict):
    ok: bool
    message: str
    generation: int  # the generation serving after that reload


class StatusData(TypedDict):
    phase: str  # a master Phase value: "starting", "serving", "reloading", ...
    generation: int
    uptime: float  # seconds since the master started (survives a standard reload)
    pid: int
    reload: ReloadProgressData | None  # the reload in progress
    last_reload: LastReloadData | None  # the last finished reload
    workers: list[WorkerStatusData]


# --- framing ------------------------------------------------------------------------


class LineReader:
    """Feed bytes, get the first complete line. Never reads a socket, never blocks."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> bytes | None:
        """Return the first line (without its newline) once complete, else None.

        Raises ControlError when more than `limit` bytes arrive without a newline.
        """
        self._buffer += data
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) >= self._limit:
                raise ControlError(f"request longer than {self._limit} bytes")
            return None
        if end + 1 > self._limit:
            raise ControlError(f"request longer than {self._limit} bytes")
        return bytes(self._buffer[:end])


# --- encoding -----------------------------------------------------------------------


def _line(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def encode_request(request: ControlRequest, *, versioned: bool = True) -> bytes:
    """The request line; `versioned=False` gives protocol 0, for a server that predates it."""
    fields: dict[str, Any] = {"cmd": request.command.value}
    if request.command is Command.RELOAD:
        mode = request.mode.value if request.mode is not None else None
        fields.update(mode=mode, wait=request.wait, timeout=request.timeout)
    if versioned:
        fields.update(protocol=PROTOCOL_VERSION, client=__version__)
    return _line(fields)


def encode_response(response: Response) -> bytes:
    data = dict(response.data) if response.data is not None else None
    return _line(
        {
            "ok": response.ok,
            "message": response.message,
            "data": data,
            "protocol": PROTOCOL_VERSION,
            "server": __version__,
        }
    )


# --- decoding -----------------------------------------------------------------------

_VERSION_FIELDS: Final = frozenset({"protocol", "client"})
_FIELDS: Final[Mapping[Command, frozenset[str]]] = {
    Command.RELOAD: frozenset({"cmd", "mode", "wait", "timeout"}) | _VERSION_FIELDS,
    Command.STATUS: frozenset({"cmd"}) | _VERSION_FIELDS,
}


_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"?')
_BRACKET: Final = re.compile(r"[\[\]{}]")


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in `text` (brackets inside strings do not count).

    Linear in the length; checked before json.loads, whose recursion a line of a
    thousand "[" would otherwise exhaust (RecursionError).
    """
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


def _object(line: bytes, what: str) -> dict[str, Any]:
    try:
        text = line.rstrip(b"\r\n").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ControlError(f"{what} is not valid JSON (not UTF-8: {exc})") from None
    if nesting_depth(text) > MAX_DEPTH:
        raise ControlError(f"{what} nests arrays or objects deeper than {MAX_DEPTH} levels")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ControlError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ControlError(f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


def _command(obj: Mapping[str, Any]) -> Command:
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise ControlError('request has no "cmd" string (expected "reload" or "status")')
    try:
        return Command(cmd)
    except ValueError:
        raise ControlError(f'unknown command {cmd!r} (expected "reload" or "status")') from None


def _mode(value: Any) -> ReloadMode | None:
    """The control protocol's edge for reload modes: a name becomes a ReloadMode here."""
    if value is None:
        return None
    try:
        return ReloadMode.parse(value)
    except ValueError as exc:
        raise ControlError(str(exc)) from None


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlError(f'"timeout" must be a number of seconds or null, got {value!r}')
    if not math.isfinite(value) or value < 0:
        raise ControlError(f'"timeout" must be a finite number >= 0, got {value!r}')
    return float(value)


def _check_version(obj: Mapping[str, Any]) -> None:
    protocol, client = obj.get("protocol", 0), obj.get("client")
    if isinstance(protocol, bool) or not isinstance(protocol, int) or protocol < 0:
        raise ControlError(f'"protocol" must be a whole number >= 0, got {protocol!r}')
    if client is not None and not isinstance(client, str):
        raise ControlError(f'"client" must be a version string, got {client!r}')
    if protocol > PROTOCOL_VERSION:
        raise ControlError(
            f"versions differ: the client (sockactd {client or 'unknown'}) speaks control "
            f"protocol {protocol}, this server (sockactd {__version__}) speaks protocol "
            f"{PROTOCOL_VERSION}. Use the sockactctl installed with the running server, or "
            "re-execute the server onto the installed version (standard reload: SIGUSR2)"
        )


def decode_request(line: bytes) -> ControlRequest:
    """Parse and validate one request line. Raises ControlError with a message for the client."""
    obj = _object(line, "request")
    command = _command(obj)
    _check_version(obj)
    unknown = sorted(set(obj) - _FIELDS[command])
    if unknown:
        raise ControlError(f"unknown field(s) in {command.value} request: {', '.join(unknown)}")
    if command is Command.STATUS:
        return ControlRequest(Command.STATUS)
    wait = obj.get("wait", False)
    if not isinstance(wait, bool):
        raise ControlError(f'"wait" must be true or false, got {wait!r}')
    return ControlRequest(
        Command.RELOAD, mode=_mode(obj.get("mode")), wait=wait, timeout=_timeout(obj.get("timeout"))
    )


def decode_response(line: bytes) -> Response:
    """Parse one response line. Raises ControlError when the server's answer is malformed."""
    obj = _object(line, "response")
    ok, message, data = obj.get("ok"), obj.get("message"), obj.get("data")
    if not isinstance(ok, bool) or not isinstance(message, str):
        raise ControlError('response needs "ok" (true/false) and "message" (string)')
    if data is not None and not isinstance(data, dict):
        raise ControlError(f'response "data" must be an object or null, got {type(data).__name__}')
    protocol, server = obj.get("protocol"), obj.get("server")
    return Response(
        ok=ok,
        message=message,
        data=data,
        protocol=protocol if isinstance(protocol, int) and not isinstance(protocol, bool) else None,
        server=server if isinstance(server, str) else None,
    )


def predates_versions(response: Response) -> bool:
    """True for a protocol-0 server's refusal of the version fields (see Versions above)."""
    return (
        not response.ok
        and response.protocol is None
        and "unknown field(s)" in response.message
        and "protocol" in response.message
    )
