"""Thread scaling: the 20 ms app at 1, 2, 4, 8, 16 threads per worker, req/s against the ideal line.

    .venv/bin/python bench/threads.py [--threads 1,2,4,8,16] [--duration 8] [--warmup 2]
                                      [--rounds 1] [--only sockactd,uwsgi,gunicorn] [--write]

2 workers x THREADS threads of bench/apps/sleepy.py (it sleeps 20 ms, as a view waits
on its database) can answer at most 2 x THREADS / 20 ms requests per second. Each
setting gets twice that many closed-loop keep-alive clients (bench/closedloop.py), so
every thread always has a request waiting; the table shows req/s, its share of the
ideal, p50 and p99. Where a server falls off the line the CPU (or its own
scheduling) is the limit: on a 2-core machine shared with the load generator that
comes early for every server. Servers as in bench/fairness.py; rounds interleave them.
`--write` replaces the `threads` section of bench/RESULTS.md.
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
from bench.fairness import SERVERS, WORKERS, server_for

APP_SECONDS = 0.020


def measure(
    name: str, threads: int, args: argparse.Namespace, tmp: Path,
    pins: dict[str, dict[str, str]],
) -> Summary:  # fmt: skip
    port = common.free_port()
    clients = 2 * WORKERS * threads
    with common.running(server_for(name, port, threads, pins), tmp / f"{name}.log", port) as proc:
        time.sleep(1)
        began = time.monotonic()
        records = run_clients(port, clients, args.warmup + args.duration, keepalive=True)
        start = began + args.warmup
        found = summarize(records, clients, start, start + args.duration)
        if not proc.alive():
            raise RuntimeError(f"{name} died under load:\n{proc.log_tail()}")
    return found


def render(results: dict[tuple[int, str], list[Summary]]) -> str:
    header = ["threads per worker", "server", "ideal req/s", "req/s", "of ideal", "p50 ms",
              "p99 ms", "errors"]  # fmt: skip
    rows = []
    for (threads, name), runs in sorted(results.items()):
        ideal = WORKERS * threads / APP_SECONDS
        rate = statistics.median(r.requests_per_s for r in runs)
        errors = sum(sum(r.errors.values()) for r in runs)
        rows.append([
            threads, name, f"{ideal:,.0f}", " / ".join(f"{r.requests_per_s:,.0f}" for r in runs),
            f"{100 * rate / ideal:.0f}%", f"{statistics.median(r.p50_ms for r in runs):,.0f}",
            f"{statistics.median(r.p99_ms for r in runs):,.0f}", errors,
        ])  # fmt: skip
    return common.markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2,4,8,16")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--only", default=",".join(SERVERS))
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    settings = [int(n) for n in args.threads.split(",")]
    results: dict[tuple[int, str], list[Summary]] = {}
    with tempfile.TemporaryDirectory(prefix="sockactd-threads-") as tmp_name:
        tmp = Path(tmp_name)
        pins: dict[str, dict[str, str]] = {}
        names = [n for n in args.only.split(",") if n != "sockactd"]
        if "sockactd" in args.only.split(","):
            commit = common.pin_sockactd(tmp)
            pins[f"sockactd@{commit}"] = common.pinned()
            names.insert(0, f"sockactd@{commit}")
        for round_ in range(args.rounds):
            for threads in settings:
                for name in names if round_ % 2 == 0 else names[::-1]:
                    print(f"# round {round_ + 1}: {name}, {threads} threads", file=sys.stderr)
                    found = measure(name, threads, args, tmp, pins)
                    results.setdefault((threads, name), []).append(found)
        summary = common.machine_summary()
    report = f"{summary}\n\n{common.this_command()}\n\n{render(results)}"
    common.publish(report, "threads", "Thread scaling, 20 ms app (issue 17)", args.write)


if __name__ == "__main__":
    main()
