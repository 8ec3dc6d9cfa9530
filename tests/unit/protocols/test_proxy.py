"""Tables for X-Forwarded-For / X-Forwarded-Proto handling behind trusted proxies."""

from __future__ import annotations

import pytest

from sockactd.protocols.proxy import TrustedProxies, apply_forwarded

NGINX = ["127.0.0.1", "10.0.0.0/8"]


def environ(remote: str, xff: str | None = None, proto: str | None = None) -> dict[str, object]:
    env: dict[str, object] = {"REMOTE_ADDR": remote, "wsgi.url_scheme": "http"}
    if xff is not None:
        env["HTTP_X_FORWARDED_FOR"] = xff
    if proto is not None:
        env["HTTP_X_FORWARDED_PROTO"] = proto
    return env


@pytest.mark.parametrize(
    ("trusted", "remote", "xff", "expected"),
    [
        # untrusted peer: headers are client input, ignored
        (NGINX, "192.0.2.9", "203.0.113.5", "192.0.2.9"),
        ([], "127.0.0.1", "203.0.113.5", "127.0.0.1"),
        # trusted peer, one hop
        (NGINX, "127.0.0.1", "203.0.113.5", "203.0.113.5"),
        (NGINX, "10.20.30.40", "203.0.113.5", "203.0.113.5"),
        # the right-most untrusted hop wins; left of it may be forged by the client
        (NGINX, "127.0.0.1", "1.1.1.1, 203.0.113.5", "203.0.113.5"),
        (NGINX, "127.0.0.1", "1.1.1.1, 203.0.113.5, 10.0.0.7", "203.0.113.5"),
        (NGINX, "127.0.0.1", "1.1.1.1,203.0.113.5,10.0.0.7,10.0.0.8", "203.0.113.5"),
        # every hop trusted: the left-most is the client
        (NGINX, "127.0.0.1", "10.0.0.5, 10.0.0.6", "10.0.0.5"),
        # no header, empty header, only commas: nothing changes
        (NGINX, "127.0.0.1", None, "127.0.0.1"),
        (NGINX, "127.0.0.1", "", "127.0.0.1"),
        (NGINX, "127.0.0.1", " , ,", "127.0.0.1"),
        # a hop that is not an address stops the walk; the peer stays
        (NGINX, "127.0.0.1", "unknown", "127.0.0.1"),
        (NGINX, "127.0.0.1", "203.0.113.5, garbage", "127.0.0.1"),
        (NGINX, "127.0.0.1", "garbage, 10.0.0.2", "127.0.0.1"),
        (NGINX, "127.0.0.1", "garbage, 203.0.113.5", "203.0.113.5"),
        # ports and brackets some proxies add
        (NGINX, "127.0.0.1", "203.0.113.5:5555", "203.0.113.5"),
        (NGINX, "127.0.0.1", "[2001:db8::1]:443", "2001:db8::1"),
        (NGINX, "127.0.0.1", "2001:db8::1", "2001:db8::1"),
        # IPv6 proxies and IPv4-mapped peers from dual-stack sockets
        (["::1"], "::1", "203.0.113.5", "203.0.113.5"),
        (["fd00::/8"], "fd00::5", "2001:db8::9, fd00::1", "2001:db8::9"),
        (NGINX, "::ffff:127.0.0.1", "203.0.113.5", "203.0.113.5"),
        (NGINX, "127.0.0.1", "::ffff:203.0.113.5", "203.0.113.5"),
        # host bits in a CIDR entry are accepted
        (["10.1.2.3/8"], "10.200.0.1", "203.0.113.5", "203.0.113.5"),
        # UNIX-socket peers have no address; trusted only with the "unix" entry
        (["unix"], "", "203.0.113.5", "203.0.113.5"),
        (NGINX, "", "203.0.113.5", ""),
        (["unix"], "127.0.0.1", "203.0.113.5", "127.0.0.1"),
    ],
)
def test_remote_addr_table(trusted: list[str], remote: str, xff: str | None, expected: str) -> None:
    env = environ(remote, xff)
    TrustedProxies(trusted).apply(env)
    assert env["REMOTE_ADDR"] == expected


@pytest.mark.parametrize(
    ("remote", "proto", "expected"),
    [
        ("127.0.0.1", "https", "https"),
        ("127.0.0.1", "HTTPS", "https"),
        ("127.0.0.1", " https ", "https"),
        ("127.0.0.1", "http", "http"),
        ("127.0.0.1", "http, https", "https"),  # the nearest proxy spoke last
        ("127.0.0.1", "ftp", "http"),
        ("127.0.0.1", "javascript", "http"),
        ("127.0.0.1", "", "http"),
        ("127.0.0.1", None, "http"),
        ("192.0.2.9", "https", "http"),  # untrusted peer
    ],
)
def test_scheme_table(remote: str, proto: str | None, expected: str) -> None:
    env = environ(remote, proto=proto)
    TrustedProxies(NGINX).apply(env)
    assert env["wsgi.url_scheme"] == expected


def test_untrusted_peer_leaves_environ_untouched() -> None:
    env = environ("192.0.2.9", "203.0.113.5", "https")
    before = dict(env)
    TrustedProxies(NGINX).apply(env)
    assert env == before


def test_apply_forwarded_is_the_same_as_the_class() -> None:
    env = environ("127.0.0.1", "203.0.113.5", "https")
    apply_forwarded(env, NGINX)
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("203.0.113.5", "https")


@pytest.mark.parametrize(("trusted", "truthy"), [([], False), (["unix"], True), (NGINX, True)])
def test_truthiness_says_whether_anything_is_trusted(trusted: list[str], truthy: bool) -> None:
    assert bool(TrustedProxies(trusted)) is truthy


@pytest.mark.parametrize(
    "entry", ["", "localhost", "10.0.0.0/33", "300.1.1.1", "::g", "1.2.3.4:80"]
)
def test_bad_entry_is_a_value_error_naming_it(entry: str) -> None:
    # the setting's name is the configuration's to add (tests/unit/config/test_load.py)
    with pytest.raises(ValueError) as caught:
        TrustedProxies(["127.0.0.1", entry])
    assert repr(entry) in str(caught.value)
