"""Fairness under overload: latency spread and requests per client, keep-alive vs not.

    .venv/bin/python bench/fairness.py [--duration 10] [--warmup 2] [--rounds 2]
                                       [--only sockactd,uwsgi,gunicorn] [--ref main~1 --ref HEAD]
                                       [--cases 1x32,4x200] [--write]

The app (bench/apps/sleepy.py) sleeps 20 ms, like a view waiting on its database, and
answers with its worker's PID. Each case is THREADSxCLIENTS: 2 workers x THREADS threads,
CLIENTS closed-loop clients (bench/closedloop.py), so demand is above capacity and every
server has a queue to order. Each client runs once with keep-alive and once with a new
connection per request. Reported: req/s, p50, p99 and max latency, the fewest and most
requests any one client had answered (a starved client shows as a low min), the split
of clients across the two workers, the new connections each worker answered first (the
accept spread, where nothing was handed over before a connection's first answer: with a
new connection per request every request is one), errors, and for each sockactd the
issue's targets read off the table.

Servers: sockactd (`--threads`), uWSGI (Debian's, `--http11-socket`, `--threads`),
gunicorn (`gthread`, `--threads`): every one keeps connections alive. `--ref` (repeatable)
runs sockactd at several commits, pinned copies, for an A/B in one run. Rounds interleave
servers and modes, so the shared machine's load falls on all of them alike.
`--write` replaces the `fairness` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.closedloop import Summary, run_clients, summarize

MODULE = "sleepy:app"
SERVERS = ("sockactd", "uwsgi", "gunicorn")
WORKERS = 2


def server_for(
    name: str, port: int, threads: int, pins: dict[str, dict[str, str]]
) -> common.Server:
    bind = f"127.0.0.1:{port}"
    if name in pins:
        common.use_pinned(pins[name])
        return common.sockactd(
            MODULE, http=bind, processes=WORKERS, extra=["--threads", str(threads)]
        )
    if name == "uwsgi":
        return common.uwsgi(
            MODULE, http11=bind, processes=WORKERS, threads=threads if threads > 1 else 0
        )
    if name == "gunicorn":
        return common.gunicorn(MODULE, bind=bind, workers=WORKERS, threads=threads)
    raise ValueError(name)


def measure(
    name: str, threads: int, clients: int, keepalive_first: bool, args: argparse.Namespace,
    tmp: Path, pins: dict[str, dict[str, str]],
) -> dict[bool, Summary]:  # fmt: skip
    port = common.free_port()
    server = server_for(name, port, threads, pins)
    found: dict[bool, Summary] = {}
    log = tmp / f"{name.replace('@', '-')}.log"
    with common.running(server, log, port) as proc:
        for keepalive in (keepalive_first, not keepalive_first):
            time.sleep(1)  # let the previous run's TIME_WAIT and backlog settle
            began = time.monotonic()
            records = run_clients(port, clients, args.warmup + args.duration, keepalive)
            start = began + args.warmup
            found[keepalive] = summarize(records, clients, start, start + args.duration)
        if not proc.alive():
            raise RuntimeError(f"{name} died under load:\n{proc.log_tail()}")
    return found


def render(results: dict[tuple[str, str, bool], list[Summary]]) -> str:
    header = [
        "case", "server", "connections", "req/s", "p50 ms", "p99 ms", "max ms",
        "requests per client (min-max)", "clients per worker",
        "new connections per worker (off even)", "errors",
    ]  # fmt: skip
    rows = []
    for (case, name, keepalive), runs in results.items():
        errors: dict[str, int] = {}
        for run in runs:
            for kind, n in run.errors.items():
                errors[kind] = errors.get(kind, 0) + n
        rows.append([
            case, name, "keep-alive" if keepalive else "new per request",
            f"{statistics.median(r.requests_per_s for r in runs):,.0f}",
            f"{statistics.median(r.p50_ms for r in runs):,.0f}",
            " / ".join(f"{r.p99_ms:,.0f}" for r in runs),
            " / ".join(f"{r.max_ms:,.0f}" for r in runs),
            " / ".join(f"{r.client_min}-{r.client_max}" for r in runs),
            " / ".join("+".join(str(n) for n in r.clients_per_worker) for r in runs),
            " / ".join(_connections(r) for r in runs),
            ", ".join(f"{n} {kind}" for kind, n in errors.items()) or "0",
        ])  # fmt: skip
    return common.markdown_table(header, rows) + _against_targets(results)


def _even(counts: tuple[int, ...]) -> tuple[tuple[int, ...], float]:
    """`counts` for all WORKERS (a worker with none is a 0), and the farthest off even."""
    padded = (*counts, *[0] * (WORKERS - len(counts)))
    even = sum(padded) / WORKERS
    return padded, max(abs(n - even) for n in padded) / even if even else 0.0


def _connections(run: Summary) -> str:
    padded, off = _even(run.connections_per_worker)
    return "+".join(str(n) for n in padded) + f" ({off:.0%})"


def _against_targets(results: dict[tuple[str, str, bool], list[Summary]]) -> str:
    """Issue 17's fairness and accept-spread targets, read off the table for each sockactd."""
    lines = []
    for (case, name, keepalive), runs in results.items():
        if not keepalive or not name.startswith("sockactd"):
            continue
        fresh = results.get((case, name, False), [])
        ratio = statistics.median(r.p99_ms for r in runs) / max(
            statistics.median(r.p99_ms for r in fresh), 1e-9
        ) if fresh else float("nan")  # fmt: skip
        worst = max(r.client_ratio for r in runs)
        steady = max((_even(r.connections_per_worker)[1] for r in fresh), default=float("nan"))
        burst = max(_even(r.connections_per_worker)[1] for r in runs)
        if any(not r.client_min for r in [*runs, *fresh]):  # p99 counts answered requests
            p99_met = "not met: clients starved, their p99 is not in the table"
        else:
            p99_met = "met" if ratio <= 1.5 else "not met"
        lines.append(
            f"- {case}, {name}: keep-alive p99 {ratio:.2f}x new-per-request p99 "
            f"(target <= 1.5: {p99_met}); max/min requests per "
            f"client {worst:.2f} at worst (target <= 2: {'met' if worst <= 2 else 'not met'}); "
            f"accepts per worker under steady load (a new connection per request) at most "
            f"{steady:.0%} off even (target <= 25%: {'met' if steady <= 0.25 else 'not met'}), "
            f"the keep-alive clients' connections {burst:.0%}"
        )
    return (
        "\nAgainst issue 17's targets (medians of the rounds' p99; worst round otherwise):\n\n"
        + ("\n".join(lines) + "\n" if lines else "(no sockactd rows)\n")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default=",".join(SERVERS))
    parser.add_argument("--ref", action="append", help="sockactd commit(s); default HEAD")
    parser.add_argument("--cases", default="1x32,4x200", help="THREADSxCLIENTS,...")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    cases = [tuple(int(n) for n in case.split("x")) for case in args.cases.split(",")]
    results: dict[tuple[str, str, bool], list[Summary]] = {}
    with tempfile.TemporaryDirectory(prefix="sockactd-fairness-") as tmp_name:
        tmp = Path(tmp_name)
        pins: dict[str, dict[str, str]] = {}
        names = []
        for name in args.only.split(","):
            if name != "sockactd":
                names.append(name)
                continue
            for ref in args.ref or ["HEAD"]:
                where = tmp / f"pin-{len(pins)}"
                where.mkdir()
                commit = common.pin_sockactd(where, ref)
                pins[f"sockactd@{commit}"] = common.pinned()
                names.append(f"sockactd@{commit}")
        for round_ in range(args.rounds):
            for threads, clients in cases:
                case = f"{WORKERS}x{threads} threads, {clients} clients"
                for name in names if round_ % 2 == 0 else names[::-1]:
                    print(f"# round {round_ + 1}: {name}, {case}", file=sys.stderr, flush=True)
                    found = measure(name, threads, clients, round_ % 2 == 0, args, tmp, pins)
                    for keepalive in (True, False):
                        results.setdefault((case, name, keepalive), []).append(found[keepalive])
        summary = common.machine_summary()
        summary += "; sockactd runs: " + ", ".join(pins) + " (the summary names the last pinned)"
    report = f"{summary}\n\n{common.this_command()}\n\n{render(dict(sorted(results.items())))}"
    common.publish(report, "fairness", "Fairness under overload (issue 17)", args.write)


if __name__ == "__main__":
    main()
