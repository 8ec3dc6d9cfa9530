"""What monitoring costs: metrics-socket on (a real Prometheus scraping every second) vs off.

    .venv/bin/python bench/metrics.py [--rounds 3] [--duration 10] [--base REF]
                                      [--cold-runs 7] [--write]

In one run, one worker per usable CPU (common.machine_workers()) and wrk with
common.wrk_threads() threads, app bench/apps/hello.py, the commit under test pinned:
  * throughput, rounds interleaved off/scraped/prometheus/off/...: wrk for --duration
    seconds with a new connection per request and with keep-alive; "scraped" runs with
    --metrics-socket and a plain scraper in this process (one GET /metrics per second):
    sockactd's own cost; "prometheus" has Debian's prometheus scraping /metrics every
    second instead (its own config and data dir): sockactd's cost plus what Prometheus's
    own CPU takes from the server on the same cores (its CPU time is reported too);
  * the board's per-request cost in a worker (request_started + request_finished),
    counting off and on, timed in-process;
  * with --base REF: cold start (socket activated, first byte) and PSS with metrics off,
    REF against the commit under test, runs interleaved.
Prints markdown; `--write` replaces the `metrics` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, throughput

MODULE = "hello:app"


def prometheus(tmp: Path, target: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("needs Debian's prometheus package")
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: sockactd\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
    )
    port = common.free_port()
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]  # fmt: skip
    log = (tmp / "prometheus.log").open("ab")
    process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not common.http_ok(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    return process


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids` so far (/proc/PID/stat fields 14 and 15)."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


ARMS = ("off", "scraped", "prometheus")


class PlainScraper:
    """GET /metrics once a second from a thread of this process, until stopped."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.stopped = threading.Event()
        self.scrapes = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(1.0):
            with urllib.request.urlopen(self.url, timeout=5) as response:
                response.read()
            self.scrapes += 1

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(10)


def load_round(arm: str, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    port, metrics_port = common.free_port(), common.free_port()
    extra = ["--metrics-socket", f"127.0.0.1:{metrics_port}"] if arm != "off" else []
    server = common.sockactd(MODULE, http=f"127.0.0.1:{port}", control=tmp / "c.sock",
                             processes=common.machine_workers(), extra=extra)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    threads = common.wrk_threads()
    scraper: subprocess.Popen[bytes] | None = None
    plain: PlainScraper | None = None
    result: dict[str, float] = {}
    with common.running(server, tmp / "sockactd.log", port) as proc:
        if arm == "prometheus":
            scraper = prometheus(tmp, metrics_port)
        elif arm == "scraped":
            plain = PlainScraper(metrics_port)
        try:
            common.run_wrk(common.wrk_argv(url, 2, args.connections, threads, close=False), 2)
            members = [proc.pid, *common.descendants(proc.pid)]
            for close in (True, False):
                time.sleep(1)
                kind = "close" if close else "keepalive"
                argv = common.wrk_argv(url, args.duration, args.connections, threads, close)
                before = cpu_seconds(members)
                master_before = cpu_seconds([proc.pid])
                prom_before = cpu_seconds([scraper.pid]) if scraper else 0.0
                done = common.run_wrk(argv, args.duration)
                spent = cpu_seconds(members) - before
                result[kind] = done.requests_per_s
                result[f"{kind}_cpu_us"] = spent / max(1, done.requests) * 1e6
                master = cpu_seconds([proc.pid]) - master_before
                result[f"{kind}_master_ms"] = master / args.duration * 1000
                if scraper is not None:
                    prom = cpu_seconds([scraper.pid]) - prom_before
                    result[f"{kind}_prom_cpu"] = prom / args.duration
        finally:
            if plain is not None:
                plain.stop()
            if scraper is not None:
                scraper.terminate()
                scraper.wait(20)
            shutil.rmtree(tmp / "prom-data", ignore_errors=True)
    return result


def board_cost() -> dict[str, float]:
    """Nanoseconds per request for the board's two calls, counting off and on."""
    from sockactd.worker.board import Board

    class Done:
        code, uwsgi, sent = 200, False, 14

    done = Done()
    samples: dict[bool, list[float]] = {False: [], True: []}
    for counting in (False, True) * 5:  # interleaved: drifts in the machine's load hit both
        board = Board.create()
        board.single_threaded()
        if counting:
            board.start_counting()

        def one(board: Board = board) -> None:
            board.request_started()
            board.request_finished(done)

        runs = timeit.repeat(one, number=100_000, repeat=3)
        samples[counting].append(min(runs) / 100_000 * 1e9)
        board.close()
    return {"off": min(samples[False]), "on": min(samples[True])}


def pss_once(tmp: Path) -> float:
    port = common.free_port()
    server = common.sockactd(MODULE, http=f"127.0.0.1:{port}", control=tmp / "c.sock",
                             processes=common.machine_workers())  # fmt: skip
    with common.running(server, tmp / "pss.log", port) as proc:
        url = f"http://127.0.0.1:{port}/"
        common.run_wrk(common.wrk_argv(url, 2, 50, common.wrk_threads(), close=False), 2)
        return sum(common.pss_kib(pid) for pid in common.descendants(proc.pid)) / 1024


def baseline(args: argparse.Namespace, tmp: Path, head: dict[str, str]) -> list[list[object]]:
    base_dir = tmp / "base"
    base_dir.mkdir()
    base_commit = common.pin_sockactd(base_dir, args.base)
    base = common.pinned()
    cold: dict[str, list[float]] = {base_commit: [], head["commit"]: []}
    pss: dict[str, list[float]] = {base_commit: [], head["commit"]: []}
    for _ in range(args.cold_runs):
        for pin in (base, head):
            common.use_pinned(pin)
            cold[pin["commit"]].append(throughput.cold_start_once("sockactd", tmp) * 1000)
    for _ in range(3):
        for pin in (base, head):
            common.use_pinned(pin)
            pss[pin["commit"]].append(pss_once(tmp))
    common.use_pinned(head)
    return [
        [commit, _spread(cold[commit], "{:.1f}"), _spread(pss[commit], "{:.1f}")] for commit in cold
    ]


def _spread(values: list[float], fmt: str) -> str:
    median = fmt.format(statistics.median(values))
    return f"{median} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-runs", type=int, default=7)
    parser.add_argument("--base", help="also compare cold start and PSS with this commit")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory(prefix="sockactd-bench-") as tmp_name:
        tmp = Path(tmp_name)
        commit = common.pin_sockactd(tmp)
        head = common.pinned()
        for n in range(args.rounds):
            for arm in ARMS:
                print(f"# round {n + 1}: {arm}", file=sys.stderr)
                runs[arm].append(load_round(arm, args, tmp))
        base_rows = baseline(args, tmp, head) if args.base else []
    rows = []
    for kind in ("close", "keepalive") if args.rounds else ():
        for key, what, fmt in (
            (kind, "req/s", "{:,.0f}"),
            (f"{kind}_cpu_us", "CPU us/request", "{:.1f}"),
        ):
            off = [r[key] for r in runs["off"]]
            cells: list[object] = [kind, what, _spread(off, fmt)]
            for arm in ARMS[1:]:
                on = [r[key] for r in runs[arm]]
                change = statistics.median(on) / statistics.median(off) - 1
                cells += [f"{_spread(on, fmt)} {change:+.1%}"]
            rows.append(cells)
    prom_cpu = [
        r[f"{kind}_prom_cpu"] for r in runs["prometheus"] for kind in ("close", "keepalive")
    ]
    master_ms = {
        arm: [r[f"{kind}_master_ms"] for r in runs[arm] for kind in ("close", "keepalive")]
        for arm in ARMS
    }
    cost = board_cost()
    report = (
        f"Machine: {common.machine_summary()}. **Shared** with other engineers' test runs "
        "while measured: spreads are wide; compare medians of interleaved rounds only.\n\n"
        f"Commit {commit}; {common.machine_workers()} workers, `bench/apps/hello.py`; "
        f"wrk `-t{common.wrk_threads()} -c{args.connections} "
        f"-d{args.duration:g}s`, {args.rounds} rounds interleaved off/scraped/prometheus; "
        "median (min-max) and change against off. *scraped*: `--metrics-socket` with a plain "
        "scraper in the bench (one GET /metrics per second): sockactd's own cost. "
        f"*prometheus*: Debian's prometheus scraping every 1 s on the same "
        f"{common.usable_cpus()} CPUs: "
        "sockactd's cost plus what Prometheus's own CPU takes from the server (Prometheus "
        f"used {_spread([c * 100 for c in prom_cpu], '{:.1f}') if prom_cpu else '-'}% of a core "
        "during the wrk runs). CPU per request: the master's and workers' user+system time "
        "during the wrk run (the master's includes answering the scrapes) over the requests "
        "wrk completed -- less disturbed by the machine's other load than req/s.\n\n"
        + common.markdown_table(["connections", "measure", "off", "scraped", "prometheus"], rows)
        + "\nThe master's own CPU per second of load (ms; it does no per-request work, so "
        "this is the scrapes' cost): "
        + ", ".join(f"{arm} {_spread(master_ms[arm], '{:.2f}')}" for arm in ARMS if master_ms[arm])
        + ".\n"
        + f"\nBoard per request (request_started + request_finished, one thread, in-process, "
        f"best of 15, off and on interleaved): counting off {cost['off']:.0f} ns, "
        f"on {cost['on']:.0f} ns "
        f"(+{cost['on'] - cost['off']:.0f} ns).\n"
    )
    if base_rows:
        report += (
            f"\nMetrics off, {args.base} against this commit, runs interleaved "
            f"(cold start: {args.cold_runs} runs; PSS: 3 runs, master + workers after a "
            "2 s keep-alive warm-up):\n\n"
            + common.markdown_table(["commit", "cold start ms", "PSS MiB"], base_rows)
        )
    report += f"\n- this section: `{' '.join(sys.argv)}`\n"
    common.publish(report, "metrics", "Monitoring: metrics on vs off", args.write)


if __name__ == "__main__":
    main()
