"""A Django app on a real PostgreSQL: sockactd, uWSGI (direct, behind nginx) and gunicorn.

    .venv/bin/python bench/django_pg.py [--threads 1,4,8] [--duration 5] [--warmup 1]
        [--rounds 2] [--rows 10000]
        [--only sockactd,uwsgi,uwsgi-nginx,gunicorn,sockactd-nginx,sockactd-close,uwsgi-http11]
        [--views list,detail,write] [--profile VIEW:THREADS] [--refs main,HEAD] [--write]

Issue 17, benchmark 1. Debian's PostgreSQL is started as a child (bench/postgres.py: its
own cluster in the run's temporary directory, a UNIX socket only, stopped after), the
project bench/apps/djangopg gets ROWS items, and each server runs its WSGI app with 2
processes x THREADS threads and the same Django settings (persistent connections,
CONN_MAX_AGE=600: one PostgreSQL connection per worker thread). Setups:

  sockactd        --http-socket (HTTP/1.1, keep-alive)
  uwsgi           Debian's uWSGI --http-socket (answers, then closes the connection)
  uwsgi-nginx     Debian's uWSGI --socket (UNIX) behind nginx `uwsgi_pass`
  gunicorn        --worker-class gthread --threads THREADS (keep-alive)
  sockactd-nginx  sockactd --socket (UNIX) behind nginx `uwsgi_pass` (same nginx as uwsgi-nginx)
  sockactd-close  sockactd --http-socket --keepalive-timeout 0 (closes after every response,
                  like uwsgi: every request waits in the one accept queue both workers share)
  uwsgi-http11    Debian's uWSGI --http11-socket (keep-alive: a thread keeps its connection
                  until the client closes it, so only 2 x THREADS of wrk's connections are
                  served and the rest wait unanswered; wrk counts a request never answered
                  neither as a latency nor as an error)

sockactd-close and uwsgi-http11 are the like-for-like pairs: sockactd against uwsgi with
both closing, and uwsgi-http11 against sockactd with both keeping connections.

uWSGI's python3 plugin embeds Debian's /usr/bin/python3, the interpreter .venv is built
on, so it imports Django and psycopg from .venv's site-packages (--pythonpath).
Load: wrk with keep-alive (it reconnects when a server closes), 2 x processes x threads
connections, so every thread always has a request waiting; a Lua script per view picks
the page (`list`: one of the first 200 pages of 50), the item (`detail`: any of ROWS) or
posts a new item (`write`). Each server start serves every view: `--warmup` seconds of
load first (connections to PostgreSQL, templates), then `--duration` measured. Rounds
interleave the setups (order reversed every other round). CPU columns: CPU time of the
server's processes (+ its nginx) and of PostgreSQL's, per answered request.
`--profile VIEW:THREADS` samples one sockactd worker with py-spy under that load instead.
`--refs A,B`: the sockactd setups run at each git ref (pinned copies, `sockactd@COMMIT`),
interleaved with the others in every round: a before/after of a change against the peers.
`--write` replaces the `django` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.postgres import PORT, ROLE, Postgres

MODULE: Final = "djangopg.wsgi:application"
PROCESSES: Final = 2
SETUPS: Final = (
    "sockactd", "uwsgi", "uwsgi-nginx", "gunicorn", "sockactd-nginx", "sockactd-close",
    "uwsgi-http11",
)  # fmt: skip
# The target check's peers of each sockactd setup: the (uwsgi, which closes), and the
# like-for-like one where it differs (uwsgi-http11 keeps connections as sockactd does).
PEERS: Final = {
    "sockactd": ("uwsgi", "uwsgi-http11"),
    "sockactd-close": ("uwsgi",),
    "sockactd-nginx": ("uwsgi-nginx",),
}
VIEWS: Final = ("list", "detail", "write")
PAGES: Final = 200  # the list view's pages drawn from (50 rows each)
_TICK: Final = os.sysconf("SC_CLK_TCK")
PINS: dict[str, dict[str, str]] = {}  # --refs: setup name (sockactd@COMMIT...) -> its pin


def lua_script(view: str, rows: int) -> str:
    """wrk's script for one view: the request each connection sends next."""
    if view == "list":
        path = f'"/items/?page=" .. math.random(0, {PAGES - 1})'
        return f'request = function()\n  return wrk.format("GET", {path})\nend\n'
    if view == "detail":
        path = f'"/items/" .. math.random(1, {rows}) .. "/"'
        return f'request = function()\n  return wrk.format("GET", {path})\nend\n'
    if view == "write":
        body = '"category=" .. math.random(1, 20) .. "&name=new+item&price=" .. math.random(1, 999)'
        return (
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
            f'request = function()\n  return wrk.format(nil, "/items/new/", nil, {body})\nend\n'
        )
    raise ValueError(view)


@dataclasses.dataclass(frozen=True)
class Run:
    """One measured wrk run of one view on one server start."""

    wrk: common.WrkResult
    server_cpu_ms: float  # per answered request
    db_cpu_ms: float


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of `pids` (processes gone by now count 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


# ---------------------------------------------------------------- servers


def server_for(
    name: str, threads: int, address: str, env: dict[str, str], site: str
) -> common.Server:
    """`address`: 127.0.0.1:PORT for HTTP setups, a UNIX socket path behind nginx."""
    nginx = _setup(name).endswith("-nginx")
    http, socket = (None, address) if nginx else (address, None)
    if name in PINS:
        common.use_pinned(PINS[name])
    if name.startswith("sockactd"):
        extra = ["--threads", str(threads)]
        if _setup(name) == "sockactd-close":
            extra += ["--keepalive-timeout", "0"]
        server = common.sockactd(MODULE, http=http, uwsgi=socket, processes=PROCESSES, extra=extra)
    elif name.startswith("uwsgi"):
        http11 = name == "uwsgi-http11"
        server = common.uwsgi(
            MODULE, http=None if http11 else http, http11=http if http11 else None,
            uwsgi_socket=socket, processes=PROCESSES, threads=threads if threads > 1 else 0,
        )  # fmt: skip
        server = dataclasses.replace(server, argv=(*server.argv, "--pythonpath", site))
    elif name == "gunicorn":
        server = common.gunicorn(MODULE, bind=address, workers=PROCESSES, threads=threads)
    else:
        raise ValueError(name)
    return dataclasses.replace(server, name=name, env=(*server.env, *env.items()))


@contextlib.contextmanager
def serving(
    name: str, threads: int, env: dict[str, str], site: str, tmp: Path, tag: str
) -> Iterator[tuple[int, list[int], common.Server]]:
    """Start one setup; yield (HTTP port, PIDs whose CPU counts, server) until done."""
    from bench.nginx import wait_listening
    from tests.integration.nginx import Mode, NginxProcess

    behind_nginx = _setup(name).endswith("-nginx")
    address = str(tmp / f"{tag}.sock") if behind_nginx else f"127.0.0.1:{common.free_port()}"
    server = server_for(name, threads, address, env, site)
    proc = common.Running(server, tmp / f"{name}.log")
    try:
        if not behind_nginx:
            common.wait_for_port(proc, int(address.rsplit(":", 1)[1]), 60.0)
            yield int(address.rsplit(":", 1)[1]), common.descendants(proc.pid), server
        else:
            wait_listening(proc, address, 60.0)
            with NginxProcess(
                tmp / f"nginx-{tag}", f"unix:{address}", Mode.UWSGI, workers=common.usable_cpus()
            ) as nginx:
                if not common.http_ok(nginx.port, timeout=30.0):
                    raise RuntimeError(f"no 200 through nginx to {name}:\n{nginx.logs()}")
                assert nginx.pid is not None
                pids = common.descendants(proc.pid) + common.descendants(nginx.pid)
                yield nginx.port, pids, server
        if not proc.alive():
            raise RuntimeError(f"{name} died under load:\n{proc.log_tail()}")
    finally:
        proc.stop()


def wrk_argv(url: str, seconds: float, connections: int, script: Path) -> list[str]:
    """wrk with keep-alive and `script`; wrk takes whole seconds."""
    argv = common.wrk_argv(
        url, round(seconds), connections, min(common.usable_cpus(), connections), False
    )
    return [*argv[:-1], "-s", str(script), argv[-1]]


def measure(
    port: int, view: str, connections: int, args: argparse.Namespace, tmp: Path,
    pids: Sequence[int], db: Postgres,
) -> tuple[Run, list[str]]:  # fmt: skip
    script = tmp / f"{view}.lua"
    script.write_text(lua_script(view, args.rows))
    url = f"http://127.0.0.1:{port}/"
    common.run_wrk(wrk_argv(url, args.warmup, connections, script), args.warmup)
    argv = wrk_argv(url, args.duration, connections, script)
    server_before, db_before = cpu_seconds(pids), cpu_seconds(db.pids())
    result = common.run_wrk(argv, args.duration)
    server_cpu = cpu_seconds(pids) - server_before
    db_cpu = cpu_seconds(db.pids()) - db_before
    per = 1000 / max(1, result.requests)
    return Run(result, server_cpu * per, db_cpu * per), argv


# ---------------------------------------------------------------- report

Key = tuple[str, int, str]  # view, threads, setup


def rate(runs: Sequence[Run]) -> float:
    return statistics.median(r.wrk.requests_per_s for r in runs)


def p99(runs: Sequence[Run]) -> float:
    return statistics.median(r.wrk.p99_ms for r in runs)


def verdicts(results: dict[Key, list[Run]], ours: str, peer: str, base: str) -> list[list[str]]:
    """Per view and thread setting: `ours` against the target (>= peer's req/s, p99 <= peer's,
    >= 1.5 x base's req/s), with the ratios, for the cells where all three ran."""
    rows = []
    cells = sorted({(view, threads) for view, threads, _ in results})
    for view, threads in cells:
        found = [results.get((view, threads, name)) for name in (ours, peer, base)]
        if not all(found):
            continue
        mine, theirs, slow = (runs for runs in found if runs)
        by_rate = rate(mine) / rate(theirs)
        by_p99 = p99(mine) / p99(theirs) if p99(theirs) else float("inf")
        by_base = rate(mine) / rate(slow)
        met = by_rate >= 1.0 and by_p99 <= 1.0 and by_base >= 1.5
        rows.append([view, str(threads), f"{by_rate:.2f}", f"{by_p99:.2f}", f"{by_base:.2f}",
                     "yes" if met else "**no**"])  # fmt: skip
    return rows


def render(results: dict[Key, list[Run]], args: argparse.Namespace) -> str:
    header = ["view", "threads", "server", "req/s median (runs)", "p50 ms",
              "p99 ms median (runs)", "errors", "server CPU ms/req",
              "PostgreSQL CPU ms/req"]  # fmt: skip
    rows = []
    order = {name: n for n, name in enumerate(SETUPS)}
    keys = sorted(
        results, key=lambda k: (VIEWS.index(k[0]), k[1], order.get(_setup(k[2]), 99), k[2])
    )
    for view, threads, name in keys:
        runs = results[view, threads, name]
        merged = common.median_result([r.wrk for r in runs])
        each = " / ".join(f"{r.wrk.requests_per_s:,.0f}" for r in runs)
        each_p99 = " / ".join(f"{r.wrk.p99_ms:.1f}" for r in runs)
        rows.append([
            view, threads, name, f"{merged.requests_per_s:,.0f} ({each})",
            f"{merged.p50_ms:.1f}", f"{merged.p99_ms:.1f} ({each_p99})", merged.errors_text(),
            f"{statistics.median(r.server_cpu_ms for r in runs):.2f}",
            f"{statistics.median(r.db_cpu_ms for r in runs):.2f}",
        ])  # fmt: skip
    out = [common.markdown_table(header, rows)]
    check = ["view", "threads", "req/s vs peer", "p99 vs peer", "req/s vs gunicorn", "target met"]
    ours_all = [name for name in dict.fromkeys(k[2] for k in keys) if name.startswith("sockactd")]
    pairs = [(name, peer) for name in ours_all for peer in PEERS[_setup(name)]]
    for ours, peer in pairs:
        table = verdicts(results, ours, peer, "gunicorn")
        if table:
            out.append(
                f"\nTarget check, {ours} against {peer} and gunicorn (ratios of medians; met = "
                "req/s >= 1.00 and p99 <= 1.00 against the peer, >= 1.5 x gunicorn's req/s):\n"
            )
            out.append(common.markdown_table(check, table))
    return "\n".join(out)


def _setup(name: str) -> str:
    """The setup a (pinned) name runs: sockactd@1234abc -> sockactd, sockactd-nginx@... ->
    sockactd-nginx."""
    return name.split("@", 1)[0]


def pin_refs(refs: Sequence[str], names: Sequence[str], tmp: Path) -> list[str]:
    """Pin sockactd at each ref; `names` with each sockactd setup once per ref."""
    commits = []
    for number, ref in enumerate(refs):
        where = tmp / f"pin-{number}"
        where.mkdir()
        commits.append(common.pin_sockactd(where, ref))
        for name in names:
            if name.startswith("sockactd"):
                PINS[f"{name}@{commits[-1]}"] = common.pinned()
    out: list[str] = []
    for name in names:
        if name.startswith("sockactd"):
            out += [f"{name}@{commit}" for commit in commits]
        else:
            out.append(name)
    return out


# ---------------------------------------------------------------- main


def database_env(db: Postgres) -> dict[str, str]:
    return {"DJANGOPG_HOST": str(db.host), "DJANGOPG_PORT": str(PORT), "DJANGOPG_NAME": "bench",
            "DJANGOPG_USER": ROLE, "DJANGO_SETTINGS_MODULE": "djangopg.settings"}  # fmt: skip


def seed(db: Postgres, rows: int) -> None:
    db.create_database("bench")
    env = common.clean_environ({**database_env(db), "PYTHONPATH": str(common.APPS)})
    done = subprocess.run([common.PYTHON, "-m", "djangopg.seed", str(rows)], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{done.stdout}{done.stderr}")


def profile(args: argparse.Namespace, tmp: Path, db: Postgres, site: str) -> str:
    """py-spy on one sockactd worker under one view's load: where its time goes."""
    from bench.profile import PY_SPY, summarise

    view, threads = args.profile.split(":")
    connections = 2 * PROCESSES * int(threads)
    raw = tmp / "profile.raw"
    started = serving("sockactd", int(threads), database_env(db), site, tmp, "profile")
    with started as (port, pids, _):
        script = tmp / f"{view}.lua"
        script.write_text(lua_script(view, args.rows))
        url = f"http://127.0.0.1:{port}/"
        load = wrk_argv(url, args.duration + 3, connections, script)
        wrk = subprocess.Popen(load, stdout=subprocess.DEVNULL)
        try:
            time.sleep(2)
            spy = [PY_SPY, "record", "--format", "raw", "--rate", "250", "--nonblocking"]
            spy += ["--duration", f"{args.duration:g}", "--output", str(raw), "--pid", str(pids[1])]
            subprocess.run(spy, check=True, timeout=args.duration + 30, capture_output=True)
        finally:
            wrk.wait(args.duration + 30)
    total, own, inclusive = summarise(raw.read_text())
    lines = [f"py-spy, one sockactd worker, {view} view, {threads} threads, {total} samples "
             "(idle excluded; all threads)\n"]  # fmt: skip
    top = [[f"`{name}`", f"{100 * n / total:.1f}%"] for name, n in own.most_common(25)]
    lines.append(common.markdown_table(["own time", "share"], top))
    top = [[f"`{name}`", f"{100 * n / total:.1f}%"] for name, n in inclusive.most_common(40)]
    lines.append(common.markdown_table(["inclusive", "share"], top))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,4,8")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--only", default=",".join(SETUPS))
    parser.add_argument("--views", default=",".join(VIEWS))
    parser.add_argument("--profile", help="VIEW:THREADS: py-spy one sockactd worker instead")
    parser.add_argument("--refs", help="comma-separated git refs: sockactd at each, interleaved")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    if args.refs and args.profile:
        parser.error("--profile samples the working tree's sockactd; drop --refs")
    settings = [int(n) for n in args.threads.split(",")]
    names, views = args.only.split(","), args.views.split(",")
    site = common._python_paths(common.PYTHON)[1]
    results: dict[Key, list[Run]] = {}
    commands: dict[str, str] = {}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sockactd-django-") as tmp_name:
        tmp = Path(tmp_name)
        if args.refs:
            names = pin_refs([r for r in args.refs.split(",") if r], names, tmp)
        else:
            common.pin_sockactd(tmp)
        with Postgres(tmp / "pg", tmp / "postgres.log") as db:
            seed(db, args.rows)
            if args.profile:
                print(profile(args, tmp, db, site))
                return
            env = database_env(db)
            for round_ in range(args.rounds):
                for threads in settings:
                    for name in names if round_ % 2 == 0 else names[::-1]:
                        print(f"# round {round_ + 1}: {name}, {threads} threads", file=sys.stderr,
                              flush=True)  # fmt: skip
                        tag = f"{name}-{threads}-{round_}"
                        with serving(name, threads, env, site, tmp, tag) as (port, pids, server):
                            commands[name] = shlex.join(server.argv)
                            for view in views:
                                run, wrk = measure(port, view, 2 * PROCESSES * threads, args,
                                                   tmp, pids, db)  # fmt: skip
                                results.setdefault((view, threads, name), []).append(run)
                                commands["wrk"] = shlex.join(wrk)
        summary = common.machine_summary()
        if PINS:
            summary += (
                "; sockactd runs: " + ", ".join(PINS) + " (the summary names the last pinned)"
            )
    minutes = (time.monotonic() - began) / 60
    text = (
        f"{summary}; PostgreSQL {Postgres.version()}\n\n"
        f"{common.this_command()} ({minutes:.1f} min): "
        f"{args.rows:,} rows, 2 processes x THREADS threads, wrk keep-alive with "
        f"2 x 2 x THREADS connections, {args.warmup:g} s warm-up + {args.duration:g} s measured "
        f"per view and server start, {args.rounds} interleaved rounds (req/s and latencies: "
        "medians of the rounds; errors summed). uWSGI's --http-socket (uwsgi) closes the "
        "connection after every response: wrk counts each such close as a "
        "`read` error and reconnects, so on that row `read` counts connections, not failed "
        "requests. uwsgi-http11 serves only 2 x THREADS of the connections (a thread keeps its "
        "own): the others' requests are never answered, which wrk does not count at all.\n\n"
        + render(results, args)
    )
    text += "\nCommands (ports and temporary paths vary):\n\n"
    for name, command in commands.items():
        shown = command.replace(str(common.ROOT) + "/", "").replace(tmp_name, "$TMP")
        text += f"- {name}: `{shown}`\n"
    common.publish(text, "django", "Django on PostgreSQL (issue 17, benchmark 1)", args.write)


if __name__ == "__main__":
    main()
