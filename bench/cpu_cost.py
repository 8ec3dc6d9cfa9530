"""CPU time sockactd spends per request at git refs: a change's cost, steadier than req/s.

    .venv/bin/python bench/cpu_cost.py --refs A,B[,C...] [--rounds 5] [--duration 4]

Requests/s on a shared 2-core machine drifts by +-10% from round to round (throughput.py
--refs), which hides a cost of a few percent. What a change adds to the request path shows
more steadily as the CPU time the server's processes spend per request: for each ref, in
interleaved rounds, sockactd (one worker per usable CPU, common.machine_workers(); app
bench/apps/hello.py) serves wrk (common.wrk_threads() threads) for --duration
seconds with a new connection per request and with keep-alive, and the nanoseconds on CPU of
every thread of the master and its workers (/proc/PID/task/TID/schedstat) are divided by the
requests wrk counted. Other load on the machine still moves it (caches, frequency), less so.
Prints a markdown table: microseconds per request, median (min-max) over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

MODES = ("close", "keepalive")


def one_round(tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    """Microseconds of server CPU per request in each mode, sockactd as pinned in tmp."""
    port = common.free_port()
    server = common.sockactd("hello:app", http=f"127.0.0.1:{port}", control=tmp / "control.sock",
                             processes=common.machine_workers())  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    cost: dict[str, float] = {}
    threads = common.wrk_threads()
    with common.running(server, tmp / "sockactd.log", port) as proc:
        common.run_wrk(common.wrk_argv(url, 1, args.connections, threads, close=False), 1)
        pids = common.descendants(proc.pid)
        for mode in MODES:
            argv = common.wrk_argv(url, args.duration, args.connections, threads, mode == "close")
            before = common.cpu_counters(pids)[0]
            result = common.run_wrk(argv, args.duration)
            cost[mode] = (common.cpu_counters(pids)[0] - before) / 1000 / max(1, result.requests)
        if not proc.alive():
            raise RuntimeError(f"sockactd died under load:\n{proc.log_tail()}")
    return cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", required=True, help="comma-separated git refs")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    refs = args.refs.split(",")
    costs: dict[str, dict[str, list[float]]] = {ref: {m: [] for m in MODES} for ref in refs}
    commits: dict[str, str] = {}
    for ref, commits[ref], tmp in common.pinned_rounds(refs, args.rounds):
        for mode, us in one_round(tmp, args).items():
            costs[ref][mode].append(us)
    rows = []
    for ref in refs:
        cells = [f"{ref} ({commits[ref]})"]
        for mode in MODES:
            values = costs[ref][mode]
            cells.append(f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})")
        rows.append(cells)
    print(f"Machine: {common.machine_summary()}\n")
    print(f"server CPU per request, us: median (min-max) of {args.rounds} interleaved rounds\n")
    header = ["sockactd at", "new conn: us/request", "keep-alive: us/request"]
    print(common.markdown_table(header, rows))
    print(f"\n- this table: `bench/cpu_cost.py {' '.join(sys.argv[1:])}`")


if __name__ == "__main__":
    main()
