"""The request-target, Host and field rules of RFC 9110/9112 that httptools leaves to us.

Pure functions over bytes, used by http.py once a request head is complete:
`origin_target` turns the request-target into the origin-form the app sees (and
the authority that replaces Host, for absolute-form); `valid_host` checks a
`uri-host [ ":" port ]`; `is_token` checks a field name. Each raises nothing:
http.py turns a refusal into a 400.

Both httptools builds sockactd meets (llhttp in 0.5+, Debian bookworm's 0.1.1
over http-parser) already refuse control bytes and spaces in targets and
values; these checks do not rely on that, so both behave the same.

This module knows nothing of sockets, WSGI or the parser's state.
"""

from __future__ import annotations

TYPE_CHECKING = False  # start-up path: docs/ARCHITECTURE.md
if TYPE_CHECKING:
    from typing import Final

__all__ = ["HEXDIG", "TOKEN", "is_token", "origin_target", "split_authority", "valid_host"]

_DIGITS: Final = b"0123456789"
_ALPHA: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 5234 B.1: HEXDIG (ABNF's quoted letters match either case, RFC 5234 2.3)
HEXDIG: Final = _DIGITS + b"ABCDEFabcdef"
# RFC 9110 5.6.2: tchar
TOKEN: Final = b"!#$%&'*+-.^_`|~" + _DIGITS + _ALPHA
# RFC 3986 3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4 is a reg-name too
_REG_NAME: Final = _ALPHA + _DIGITS + b"-._~" + b"!$&'()*+,;=" + b"%"
# RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME: Final = _ALPHA + _DIGITS + b"+-."
# RFC 3986 3.3/3.4: pchar, "/" and "?" make up absolute-path [ "?" query ]. Also let
# through, for peer compatibility: the characters RFC 3986 excludes but clients send
# unencoded in the wild (`[]` in PHP-style query keys, `|`, `{}` and `"` in JSON-ish
# query values, `\`, `^`, backquote, `<>`), which llhttp, nginx and gunicorn accept too.
# Never let through: control bytes, space, DEL, `#` (a fragment is not part of a
# request-target) and bytes above 0x7F (a URI is ASCII; llhttp refuses them too).
_TARGET: Final = bytes(range(0x21, 0x7F)).replace(b"#", b"")


def is_token(name: bytes) -> bool:
    """RFC 9110 5.1: a field name is a non-empty token."""
    return bool(name) and not name.strip(TOKEN)


def _valid_pct(text: bytes) -> bool:
    """Every "%" starts a pct-encoded triplet (RFC 3986 2.1)."""
    start = text.find(b"%")
    while start >= 0:
        pair = text[start + 1 : start + 3]
        if len(pair) != 2 or pair.strip(HEXDIG):
            return False
        start = text.find(b"%", start + 3)
    return True


def _valid_ip_literal(literal: bytes) -> bool:
    """RFC 3986 3.2.2: IP-literal = "[" ( IPv6address / IPvFuture ) "]", brackets removed."""
    if literal[:1] in (b"v", b"V"):
        version, _, rest = literal[1:].partition(b".")
        allowed = _ALPHA + _DIGITS + b"-._~!$&'()*+,;=:"
        return bool(version and rest) and not version.strip(HEXDIG) and not rest.strip(allowed)
    if not literal or literal.strip(HEXDIG + b":."):
        return False
    import ipaddress  # rare: only bracketed hosts come here

    try:
        ipaddress.IPv6Address(literal.decode("ascii"))
    except ValueError:
        return False
    return True


def split_authority(value: bytes) -> tuple[bytes, bytes | None] | None:
    """(uri-host, port or None) of `uri-host [ ":" port ]` (RFC 3986 3.2.2-3); None if invalid."""
    if value[:1] == b"[":
        close = value.find(b"]")
        if close < 0 or not _valid_ip_literal(value[1:close]):
            return None
        host, rest = value[: close + 1], value[close + 1 :]
        if not rest:
            return host, None
        if rest[:1] != b":" or rest[1:].strip(_DIGITS):
            return None
        return host, rest[1:]
    host, colon, port = value.partition(b":")
    if host.strip(_REG_NAME) or port.strip(_DIGITS) or (b"%" in host and not _valid_pct(host)):
        return None
    return host, (port if colon else None)


def valid_host(value: bytes) -> bool:
    """RFC 9112 3.2: a Host field value is `uri-host [ ":" port ]`, uri-host maybe empty."""
    return split_authority(value) is not None


def origin_target(method: str, target: bytes) -> tuple[bytes, bytes | None] | str:
    """(origin-form target, authority or None) for a request, or why it is refused.

    RFC 9112 3.2: origin-form for every method; absolute-form too (3.2.2: its authority
    then replaces Host); authority-form only for CONNECT (3.2.3); asterisk-form only for
    OPTIONS (3.2.4). RFC 9112 3: an invalid request-line gets 400, never a guess.
    """
    if target.strip(_TARGET):
        return "invalid character in the request target"
    if method == "CONNECT":
        parts = split_authority(target)
        # RFC 9110 9.3.6: a server MUST reject an empty or invalid port number
        if parts is None or not parts[0] or not parts[1] or not 0 < int(parts[1]) < 65536:
            return "CONNECT needs host:port as its target"
        return target, None
    first = target[:1]
    if first == b"/":
        return target, None
    if target == b"*":
        if method != "OPTIONS":
            return "the * target is for OPTIONS only"
        return target, None
    scheme, sep, rest = target.partition(b"://")
    if not sep or not scheme or scheme[:1].strip(_ALPHA) or scheme.strip(_SCHEME):
        return "request target is neither origin-form nor absolute-form"
    end = len(rest)
    for delimiter in (b"/", b"?"):
        found = rest.find(delimiter)
        if 0 <= found < end:
            end = found
    authority, path = rest[:end], rest[end:]
    if b"@" in authority:
        return "userinfo in the request target"  # RFC 9110 4.2.4: SHOULD be an error
    parts = split_authority(authority)
    if parts is None or not parts[0]:  # RFC 9110 4.2.1: an empty host is invalid
        return "invalid authority in the request target"
    if path[:1] != b"/":
        path = b"/" + path
    return path, authority
