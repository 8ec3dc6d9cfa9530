"""X-Forwarded-For / X-Forwarded-Proto, believed only from trusted proxies.

Theory of operation: the peer that connected (REMOTE_ADDR) is a proxy we trust
or it is not. If not, its X-Forwarded-* headers are just client input and are
ignored. If it is, X-Forwarded-For is read right to left -- each proxy appends
the address it saw -- skipping addresses we trust; the first one we do not
trust is the client (anything left of it could be forged by that client). When
every hop is trusted, the left-most is the client. X-Forwarded-Proto may only
say "http" or "https".

This module works on a WSGI environ dict and nothing else: no sockets, no
logging, no settings. The trusted list is parsed once (`TrustedProxies`); a bad
entry is a ValueError saying what is wrong with it. The configuration calls the
same parser at start-up and names the setting in its own error (config/load.py).

The special entry "unix" trusts peers that have no IP address, i.e. clients on
a UNIX socket (REMOTE_ADDR empty or not an address), such as nginx with
`proxy_pass http://unix:/run/sockactd/app.sock`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final

__all__ = ["TrustedProxies", "apply_forwarded"]

_UNIX: Final = "unix"
_SCHEMES: Final = frozenset({"http", "https"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The parsed `trusted-proxies` list; `apply` rewrites one environ in place.

    Raises ValueError for an entry that is not an address, a network or "unix".
    """

    def __init__(self, trusted: Sequence[str]) -> None:
        self._networks: tuple[IPNetwork, ...] = tuple(
            _parse_network(entry) for entry in trusted if entry.strip() != _UNIX
        )
        self._unix = any(entry.strip() == _UNIX for entry in trusted)

    def __bool__(self) -> bool:
        return bool(self._networks) or self._unix

    def apply(self, environ: dict[str, object]) -> None:
        """Set REMOTE_ADDR and wsgi.url_scheme from X-Forwarded-* if the peer is trusted."""
        if not self._peer_trusted(str(environ.get("REMOTE_ADDR", ""))):
            return
        client = self._client_from(str(environ.get("HTTP_X_FORWARDED_FOR", "")))
        if client is not None:
            environ["REMOTE_ADDR"] = client
        scheme = _scheme_from(str(environ.get("HTTP_X_FORWARDED_PROTO", "")))
        if scheme is not None:
            environ["wsgi.url_scheme"] = scheme

    def _peer_trusted(self, remote_addr: str) -> bool:
        address = _parse_address(remote_addr)
        if address is None:
            return self._unix
        return self._contains(address)

    def _contains(self, address: IPAddress) -> bool:
        return any(address in network for network in self._networks)

    def _client_from(self, header: str) -> str | None:
        """The right-most untrusted hop, else the left-most; None if a hop is not an address.

        An unparsable hop before the client is found means the chain cannot be
        followed, so the connected peer stays REMOTE_ADDR.
        """
        hops = [hop.strip() for hop in header.split(",") if hop.strip()]
        client: IPAddress | None = None
        for hop in reversed(hops):
            client = _parse_address(_strip_port(hop))
            if client is None or not self._contains(client):
                break
        return None if client is None else str(client)


def apply_forwarded(environ: dict[str, object], trusted: Sequence[str]) -> None:
    """One-off form of TrustedProxies(trusted).apply(environ); servers keep a TrustedProxies."""
    TrustedProxies(trusted).apply(environ)


def _parse_network(entry: str) -> IPNetwork:
    try:
        # strict=False: "10.1.2.3/8" means the /8 around it, as operators write it
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an IP address, a CIDR network, or 'unix'") from None


def _parse_address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return address


def _strip_port(hop: str) -> str:
    """'[2001:db8::1]:443' -> '2001:db8::1', '192.0.2.1:80' -> '192.0.2.1'; else unchanged."""
    if hop.startswith("["):
        return hop[1:].partition("]")[0]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop


def _scheme_from(header: str) -> str | None:
    # several proxies may each have added a value; the nearest one spoke last
    value = header.rpartition(",")[2].strip().lower()
    return value if value in _SCHEMES else None
