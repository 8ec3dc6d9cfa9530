"""What uWSGI options become in systemd units: the socket and service drop-ins.

Each handler takes one option's value and the Plan being built, adds directives
(or settings) to it, and returns what the option became, in words for the
report; `Unmappable` says why a value cannot be carried over. The rules table
(rules.py) says which option goes to which handler; nothing here knows names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

__all__ = ["Handler", "Plan", "Unmappable", "is_false", "listen_on", "service_env"]

_FALSE: Final = frozenset({"0", "false", "off", "no"})
# read by the interpreter when it starts, before sockactd could set them
_INTERPRETER_ENV: Final = re.compile(r"^(PYTHON[A-Z_]*|LANG|LANGUAGE|LC_[A-Z]+)$")
_HOST_PORT: Final = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]]*):(?P<port>\d+)$")
_IPV4: Final = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


class Unmappable(Exception):
    """This value has no sockactd or systemd equivalent; the message says why."""


@dataclass
class Plan:
    """What the conversion has produced so far."""

    settings: dict[str, object] = field(default_factory=dict)
    socket: list[tuple[str, str]] = field(default_factory=list)
    service: list[tuple[str, str]] = field(default_factory=list)
    protocol: str | None = None  # of the first listening socket: one unit names one
    name: str = "APP"  # the instance
    second: list[tuple[str, str]] = field(default_factory=list)  # the other protocol's unit

    @property
    def second_unit(self) -> str:
        """The extra socket unit for sockets of the other protocol (see listen_on)."""
        other = dict(self.second).get("FileDescriptorName", "")
        return f"sockactd-{self.name}-{other}.socket"

    def add_socket(self, directive: str, value: str) -> str:
        self.socket.append((directive, value))
        return f"{directive}={value}"

    def add_service(self, directive: str, value: str) -> str:
        if (directive, value) not in self.service:
            self.service.append((directive, value))
        return f"{directive}={value}"


Handler = Callable[[str, Plan], str]


def is_false(value: str) -> bool:
    """uWSGI's reading of a flag: `false`, `off`, `no`, `0` are false; anything else is true."""
    return value.strip().lower() in _FALSE


def listen_on(protocol: str) -> Handler:
    """`socket`, `http-socket`, ...: a ListenStream= of the socket unit speaking `protocol`.

    The first listening option decides the protocol of sockactd@APP.socket; sockets of
    the other protocol go to a second unit, sockactd-APP-PROTOCOL.socket.
    """

    def handler(value: str, plan: Plan) -> str:
        address = _systemd_address(value)
        if plan.protocol is not None and plan.protocol != protocol:
            # FileDescriptorName= names every socket of a unit: the other protocol's sockets
            # go to a second socket unit, which the service lists in Sockets=
            if not plan.second:
                plan.second.append(("FileDescriptorName", protocol))
                plan.add_service("Sockets", f"sockactd@{plan.name}.socket {plan.second_unit}")
            plan.second.append(("ListenStream", address))
            return (
                f"ListenStream={address} ({protocol}) in a second socket unit, {plan.second_unit}"
            )
        if plan.protocol is None:
            plan.protocol = protocol
            plan.add_socket("ListenStream", "")  # drop the shipped /run/sockactd/APP.sock
            plan.add_socket("FileDescriptorName", protocol)
        return plan.add_socket("ListenStream", address) + f" ({protocol})"

    return handler


def _systemd_address(value: str) -> str:
    value = value.strip()
    if not value:
        raise Unmappable("an empty address")
    if value.startswith(("/", "@")) or ":" not in value:
        if "," in value:
            raise Unmappable(f"socket modifiers ({value.split(',', 1)[1]}) are uWSGI's own")
        if not value.startswith(("/", "@")):
            raise Unmappable(
                f"relative path {value!r}: uWSGI binds it in its working directory, "
                "systemd needs an absolute path"
            )
        return value  # a UNIX socket path, or @abstract
    match = _HOST_PORT.match(value)
    if match is None:
        raise Unmappable(f"{value!r} is not HOST:PORT")
    host, port = match.group("host"), match.group("port")
    if host in ("", "*", "0.0.0.0"):
        host = "0.0.0.0"
    elif host == "localhost":
        host = "127.0.0.1"
    elif not (host.startswith("[") or _IPV4.match(host)):
        raise Unmappable(f"host name {host!r}: systemd listens on IP addresses only")
    return f"{host}:{port}"


def socket_mode(value: str, plan: Plan) -> str:
    mode = value.strip()
    if mode in ("", "1", "true", "yes", "on"):
        mode = "666"  # uWSGI's chmod-socket without a mode
    if not re.fullmatch(r"[0-7]{3,4}", mode):
        raise Unmappable(f"{value!r} is not an octal mode")
    return plan.add_socket("SocketMode", mode.rjust(4, "0"))


def socket_owner(value: str, plan: Plan) -> str:
    user, _, group = value.strip().partition(":")
    if not user:
        raise Unmappable("no user given")
    done = [plan.add_socket("SocketUser", user)]
    if group:
        done.append(plan.add_socket("SocketGroup", group))
    return ", ".join(done)


def number_directive(unit: str, directive: str, suffix: str = "") -> Handler:
    """An option whose integer value becomes one directive (`listen` -> Backlog=, ...)."""

    def handler(value: str, plan: Plan) -> str:
        if not value.strip().isdigit():
            raise Unmappable(f"{value!r} is not a whole number")
        text = value.strip() + suffix
        return (
            plan.add_socket(directive, text)
            if unit == "socket"
            else plan.add_service(directive, text)
        )

    return handler


def socket_flag(directive: str) -> Handler:
    def handler(value: str, plan: Plan) -> str:
        return plan.add_socket(directive, "no" if is_false(value) else "yes")

    return handler


def run_as(directive: str) -> Handler:
    """`uid`/`gid`: the service runs as that (static) user instead of a dynamic one."""

    def handler(value: str, plan: Plan) -> str:
        if not value.strip():
            raise Unmappable("no user or group given")
        plan.add_service("DynamicUser", "no")
        return plan.add_service(directive, value.strip()) + " (and DynamicUser=no)"

    return handler


def umask(value: str, plan: Plan) -> str:
    if not re.fullmatch(r"[0-7]{1,4}", value.strip()):
        raise Unmappable(f"{value!r} is not an octal umask")
    return plan.add_service("UMask", value.strip().rjust(4, "0"))


def service_env(value: str, plan: Plan) -> str:
    """`env`: into the TOML's `env`, or Environment= for what the interpreter reads at start."""
    key, equals, _ = value.partition("=")
    if not equals or not key:
        raise Unmappable(f"{value!r} is not KEY=VALUE")
    if _INTERPRETER_ENV.match(key):
        quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return plan.add_service("Environment", quoted) + " (read when Python starts)"
    env = plan.settings.setdefault("env", [])
    assert isinstance(env, list)
    env.append(value)
    return "env (TOML)"


def plugins(value: str, plan: Plan) -> str:
    """Python and the plugins whose options are converted are built in; others are not."""
    names = [name.strip() for name in re.split(r"[,\s]+", value) if name.strip()]
    foreign = [n for n in names if not re.fullmatch(r"python\d*|http|logfile|cheaper_\w+", n)]
    if foreign:
        raise Unmappable(f"plugin {', '.join(foreign)}: sockactd serves Python WSGI only")
    return "nothing: sockactd is a Python WSGI server, nothing to load"
