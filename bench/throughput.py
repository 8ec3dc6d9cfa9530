"""Throughput, cold start and memory of a hello-world app: sockactd vs gunicorn vs uWSGI.

    .venv/bin/python bench/throughput.py [--duration 10] [--connections 50] [--cold-runs 7]
                                         [--only sockactd,gunicorn,uwsgi] [--write]
    .venv/bin/python bench/throughput.py --refs main,HEAD [--rounds 5] [--duration 5]

In one run, on one machine, one server at a time, one worker per usable CPU each
(common.machine_workers(): 2 on the 2-CPU VM of RESULTS.md), app bench/apps/hello.py:
  * wrk for --duration seconds with a new connection per request (`Connection: close`)
    and with keep-alive: requests/s, p99 (wrk --latency);
  * cold start: under `systemd-socket-activate -l 127.0.0.1:PORT --fdname=http`, the time
    from our first connection to the first response byte, median of --cold-runs runs;
  * memory: PSS sum of the master and its workers (/proc/PID/smaps_rollup) after a
    keep-alive warm-up.
Prints markdown; `--write` replaces the `throughput` section of bench/RESULTS.md.
`--refs A,B`: sockactd alone at each git ref, rounds interleaved (A, B, A, B, ...) so
drifts in the machine's load hit both alike: a before/after of a change, load only.
"""

from __future__ import annotations

import argparse
import shlex
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

SERVERS = ("sockactd", "gunicorn", "uwsgi")
MODULE = "hello:app"


def server_for(name: str, port: int | None, tmp: Path) -> common.Server:
    """The server's command line; `port=None` means the socket comes from systemd."""
    bind = None if port is None else f"127.0.0.1:{port}"
    workers = common.machine_workers()
    if name == "sockactd":
        return common.sockactd(MODULE, http=bind, processes=workers, control=tmp / "control.sock")
    if name == "gunicorn":
        return common.gunicorn(MODULE, bind=bind, workers=workers)
    if name == "uwsgi":
        return common.uwsgi(MODULE, http=bind, processes=workers, activated=port is None)
    raise ValueError(name)


# ---------------------------------------------------------------- load and memory


def measure_load(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    port = common.free_port()
    server = server_for(name, port, tmp)
    url = f"http://127.0.0.1:{port}/"
    row: dict[str, object] = {"server": name, "argv": server.argv}
    with common.running(server, tmp / f"{name}.log", port) as proc:
        warm = common.wrk_argv(url, 2, args.connections, args.threads, close=False)
        common.run_wrk(warm, 2)
        members = common.descendants(proc.pid)
        row["processes"] = len(members)
        row["pss_mib"] = sum(common.pss_kib(pid) for pid in members) / 1024
        for close in (True, False):
            key = "close" if close else "keepalive"
            argv = common.wrk_argv(url, args.duration, args.connections, args.threads, close)
            row[f"wrk_{key}"] = argv
            results = []
            for _ in range(args.rounds):
                time.sleep(1)  # let TIME_WAIT churn and the previous run's backlog settle
                results.append(common.run_wrk(argv, args.duration))
            row[key] = common.median_result(results)
            row[f"{key}_spread"] = common.spread(results)
        if not proc.alive():
            raise RuntimeError(f"{name} died under load:\n{proc.log_tail()}")
    return row


# ---------------------------------------------------------------- cold start


def cold_start_once(name: str, tmp: Path) -> float:
    """Seconds from connect() to the first response byte, socket activated on first use."""
    return first_byte_seconds(server_for(name, None, tmp), tmp / f"cold-{name}.log")


def first_byte_seconds(server: common.Server, log: Path) -> float:
    """`server` (no bind address) under systemd-socket-activate: connect() to first byte."""
    name = server.name
    port = common.free_port()
    # systemd-socket-activate passes on only the variables it is given with -E
    argv = activation_argv(port, server.argv, [f"{k}={v}" for k, v in server.env])
    log.unlink(missing_ok=True)
    proc = common.Running(server, log, argv)
    try:
        wait_for_text(log, "Listening on", proc, 10.0)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            started = time.perf_counter()
            conn.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            first = conn.recv(64)
            elapsed = time.perf_counter() - started
        if not first.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{name} cold start answered {first!r}:\n{proc.log_tail()}")
        return elapsed
    finally:
        proc.stop()


def cold_only(names: list[str], args: argparse.Namespace) -> None:
    """Cold start alone, one run of each server in turn so drifts in load hit all alike."""
    with tempfile.TemporaryDirectory(prefix="sockactd-bench-") as tmp_name:
        tmp = Path(tmp_name)
        common.pin_sockactd(tmp)
        if args.sockactd_command:
            common.use_sockactd_command(shlex.split(args.sockactd_command))
        cold: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.cold_runs):
            for name in names:
                cold[name].append(cold_start_once(name, tmp))
        rows = [[name, _cold(sorted(times)), common.shown_argv(server_for(name, None, tmp).argv)]
                for name, times in cold.items()]  # fmt: skip
    print(f"Machine: {common.machine_summary()}\n")
    print(common.markdown_table(["server", "cold start ms (median, min-max)", "argv"], rows))
    print(f"\n- this table: `{common.shown_argv(sys.argv)}`")


def refs_only(refs: list[str], args: argparse.Namespace) -> None:
    """sockactd at each ref, one load round of each in turn; a table of the medians."""
    one_round = argparse.Namespace(**{**vars(args), "rounds": 1})
    results: dict[str, list[dict[str, object]]] = {ref: [] for ref in refs}
    commits: dict[str, str] = {}
    for ref, commits[ref], tmp in common.pinned_rounds(refs, args.rounds):
        results[ref].append(measure_load("sockactd", one_round, tmp))
    rows = []
    for ref, runs in results.items():
        row = [f"{ref} ({commits[ref]})"]
        for key in ("close", "keepalive"):
            found = [run[key] for run in runs]
            assert all(isinstance(r, common.WrkResult) for r in found)
            row.append(common.spread(found))  # type: ignore[arg-type]
            row.append(common.median_result(found).errors_text())  # type: ignore[arg-type]
        rows.append(row)
    header = ["sockactd at", "new conn: req/s", "errors", "keep-alive: req/s", "errors"]
    print(f"Machine: {common.machine_summary()}\n")
    print(
        f"wrk `-t{args.threads} -c{args.connections} -d{args.duration:g}s`, {args.rounds} "
        "rounds interleaved across refs: req/s median (min-max)\n"
    )
    print(common.markdown_table(header, rows))
    print(f"\n- this table: `{common.shown_argv(sys.argv)}`")


def activation_argv(port: int, argv: Sequence[str], env: Sequence[str] = ()) -> list[str]:
    options = [f"--setenv={assignment}" for assignment in env]
    return ["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=http", *options, *argv]


def wait_for_text(path: Path, text: str, proc: common.Running, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if not proc.alive():
            raise RuntimeError(f"exited before listening:\n{proc.log_tail()}")
        time.sleep(0.01)
    raise RuntimeError(f"{text!r} never appeared in {path}")


# ---------------------------------------------------------------- report


def render(
    rows: list[dict[str, object]], cold: dict[str, list[float]], args: argparse.Namespace
) -> str:
    out = [f"Machine: {common.machine_summary()}\n"]
    out.append(
        f"wrk `-t{args.threads} -c{args.connections} -d{args.duration:g}s --latency`, "
        f"{args.rounds} runs per server and kind: req/s median (min-max), p99 median, "
        f"errors summed; {common.machine_workers()} workers each, app `bench/apps/hello.py`. "
        "Cold start: median of "
        f"{args.cold_runs} runs. PSS: master + workers after a 2 s keep-alive warm-up.\n"
    )
    gunicorn_close = _rps(rows, "gunicorn", "close")
    uwsgi_close = _rps(rows, "uwsgi", "close")
    header = [
        "server",
        "new conn: req/s",
        "p99 ms",
        "errors",
        "keep-alive: req/s",
        "p99 ms",
        "errors",
        "x gunicorn (new conn)",
        "x uWSGI (new conn)",
        "cold start ms (median, min-max)",
        "PSS MiB (procs)",
    ]
    table = []
    for row in rows:
        close, keep = row["close"], row["keepalive"]
        assert isinstance(close, common.WrkResult) and isinstance(keep, common.WrkResult)
        times = sorted(cold.get(str(row["server"]), []))
        table.append(
            [
                row["server"],
                row["close_spread"],
                f"{close.p99_ms:.2f}",
                close.errors_text(),
                row["keepalive_spread"],
                f"{keep.p99_ms:.2f}",
                keep.errors_text(),
                _ratio(close.requests_per_s, gunicorn_close),
                _ratio(close.requests_per_s, uwsgi_close),
                _cold(times),
                f"{row['pss_mib']:.1f} ({row['processes']})",
            ]
        )
    out.append(common.markdown_table(header, table))
    out.append("\nCommands (ports vary per run):\n")
    for row in rows:
        argv = row["argv"]
        assert isinstance(argv, tuple)
        out.append(f"- {row['server']}: `{common.shown_argv(argv)}`")
    close, keepalive = rows[0]["wrk_close"], rows[0]["wrk_keepalive"]
    assert isinstance(close, list) and isinstance(keepalive, list)
    out.append(f"- wrk, new connection per request: `{common.shown_argv(close)}`")
    out.append(f"- wrk, keep-alive: `{common.shown_argv(keepalive)}`")
    out.append(
        "- cold start: `systemd-socket-activate -l 127.0.0.1:PORT --fdname=http <server argv "
        "without its bind address>` (uWSGI: `--protocol http` instead of `--http-socket`)"
    )
    out.append(f"- this table: `{common.shown_argv(sys.argv)}`\n")
    return "\n".join(out)


def _rps(rows: list[dict[str, object]], name: str, key: str) -> float | None:
    for row in rows:
        if row["server"] == name:
            result = row[key]
            assert isinstance(result, common.WrkResult)
            return result.requests_per_s
    return None


def _ratio(value: float, base: float | None) -> str:
    return "-" if not base else f"{value / base:.2f}"


def _cold(times: list[float]) -> str:
    if not times:
        return "-"
    ms = [t * 1000 for t in times]
    return f"{statistics.median(ms):.1f} ({ms[0]:.1f}-{ms[-1]:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=common.wrk_threads(), help="wrk's")
    parser.add_argument("--cold-runs", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per server and kind")
    parser.add_argument("--only", default=",".join(SERVERS))
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument(
        "--cold-only", action="store_true", help="only the cold start, runs interleaved"
    )
    parser.add_argument(
        "--sockactd-command",
        help="start sockactd with this command, e.g. /usr/bin/sockactd of an installed .deb",
    )
    parser.add_argument(
        "--refs", help="comma-separated git refs: sockactd's load at each, rounds interleaved"
    )
    args = parser.parse_args()
    if args.refs:
        if args.write or args.cold_only:
            parser.error("--refs neither --write nor --cold-only")
        refs_only([r for r in args.refs.split(",") if r], args)
        return
    names = [n for n in args.only.split(",") if n]
    if args.cold_only:
        if args.write:
            parser.error("--cold-only does not --write (the table has no load columns)")
        cold_only(names, args)
        return
    rows, cold = [], {}
    with tempfile.TemporaryDirectory(prefix="sockactd-bench-") as tmp_name:
        tmp = Path(tmp_name)
        common.pin_sockactd(tmp)
        for name in names:
            print(f"# {name}: load", file=sys.stderr, flush=True)
            rows.append(measure_load(name, args, tmp))
        for name in names:
            print(f"# {name}: cold start x{args.cold_runs}", file=sys.stderr, flush=True)
            cold[name] = [cold_start_once(name, tmp) for _ in range(args.cold_runs)]
    report = render(rows, cold, args)
    print(report)
    if args.write:
        common.write_section("throughput", "## Throughput, cold start, memory\n\n" + report)


if __name__ == "__main__":
    main()
