"""bench/django_pg.py's pure parts: the target check, the wrk scripts and the servers' command
lines; bench/postgres.py's setpriv wrapper."""

from __future__ import annotations

import pytest

from bench.common import WrkResult
from bench.django_pg import PEERS, SETUPS, Run, lua_script, server_for, verdicts
from bench.postgres import as_user_argv


def run(rate: float, p99: float) -> Run:
    return Run(WrkResult(rate, p99 / 2, p99, int(rate * 5), (0, 0, 0, 0), 0), 1.0, 1.0)


@pytest.mark.parametrize(
    ("ours", "peer", "base", "met"),
    [
        ((1000, 10), (900, 12), (600, 20), "yes"),  # above the peer and 1.67 x the base
        ((1000, 10), (1000, 10), (666, 20), "yes"),  # equal to the peer counts as met
        ((890, 10), (900, 12), (500, 20), "**no**"),  # fewer req/s than the peer
        ((1000, 13), (900, 12), (500, 20), "**no**"),  # p99 above the peer's
        ((1000, 10), (900, 12), (700, 20), "**no**"),  # only 1.43 x the base
    ],
)
def test_verdicts_apply_all_three_targets(
    ours: tuple[float, float], peer: tuple[float, float], base: tuple[float, float], met: str
) -> None:
    results = {
        ("list", 4, "sockactd"): [run(*ours)],
        ("list", 4, "uwsgi"): [run(*peer)],
        ("list", 4, "gunicorn"): [run(*base)],
    }
    [row] = verdicts(results, "sockactd", "uwsgi", "gunicorn")
    assert row[:2] == ["list", "4"]
    assert row[-1] == met


def test_verdicts_use_the_median_of_rounds_and_skip_incomplete_cells() -> None:
    results = {
        ("detail", 1, "sockactd"): [run(100, 10), run(300, 10), run(200, 10)],
        ("detail", 1, "uwsgi"): [run(200, 10)],
        ("detail", 1, "gunicorn"): [run(100, 10)],
        ("write", 1, "sockactd"): [run(100, 10)],  # no peer ran: no row
    }
    assert verdicts(results, "sockactd", "uwsgi", "gunicorn") == [
        ["detail", "1", "1.00", "1.00", "2.00", "yes"]
    ]


def test_wrk_scripts_address_the_three_views() -> None:
    assert '"/items/?page=" .. math.random(0, 199)' in lua_script("list", 10_000)
    assert '"/items/" .. math.random(1, 10000) .. "/"' in lua_script("detail", 10_000)
    write = lua_script("write", 10_000)
    assert 'wrk.method = "POST"' in write
    assert '"/items/new/"' in write
    with pytest.raises(ValueError, match="delete"):
        lua_script("delete", 10)


def test_postgres_commands_run_as_the_user_through_setpriv_or_as_they_are() -> None:
    assert as_user_argv(["initdb", "-D", "x"], None) == ["initdb", "-D", "x"]
    assert as_user_argv(["postgres"], "postgres") == [
        "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", "postgres",
    ]  # fmt: skip


def argv_of(name: str) -> tuple[str, ...]:
    return server_for(name, 4, "127.0.0.1:8000", {}, "/site").argv


def test_the_like_for_like_setups_differ_from_their_twins_only_in_keep_alive() -> None:
    close, keep = argv_of("sockactd-close"), argv_of("sockactd")
    assert close[close.index("--keepalive-timeout") + 1] == "0"
    assert "--keepalive-timeout" not in keep
    assert [a for a in close if a not in ("--keepalive-timeout", "0")] == list(keep)
    http11, http = argv_of("uwsgi-http11"), argv_of("uwsgi")
    assert http11[http11.index("--http11-socket") + 1] == "127.0.0.1:8000"
    assert "--http-socket" not in http11
    assert http[http.index("--http-socket") + 1] == "127.0.0.1:8000"
    swapped = ["--http-socket" if a == "--http11-socket" else a for a in http11]
    assert swapped == list(http)


def test_every_sockactd_setup_has_its_peers_in_the_setups() -> None:
    ours = {name for name in SETUPS if name.startswith("sockactd")}
    assert set(PEERS) == ours
    assert all(peer in SETUPS for peers in PEERS.values() for peer in peers)
