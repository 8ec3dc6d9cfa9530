"""The fd-exhaustion run of issue 12 item 2: idle connections past the fd limit.

    .venv/bin/python bench/fd_flood.py [--rounds 3] [--flood 1000] [--limit 256] [--hold 3]
                                       [--only sockactd,gunicorn,uwsgi]

Each server (2 workers, bench/apps/hello.py) runs under `prlimit --nofile=LIMIT:LIMIT`
(soft and hard: sockactd cannot raise it). The flood opens FLOOD idle connections,
holds them HOLD seconds and closes them. Per server, one round of each in turn:
CPU of the workers during the hold (percent of one core, the busiest worker),
lines the server wrote during the flood, whether the same workers are still there,
and the time from closing the flood to a fresh client's 200.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

SERVERS = ("sockactd", "gunicorn", "uwsgi")
MODULE = "hello:app"


def server_for(name: str, port: int, tmp: Path) -> common.Server:
    bind = f"127.0.0.1:{port}"
    if name == "sockactd":
        return common.sockactd(MODULE, http=bind, control=tmp / "control.sock")
    if name == "gunicorn":
        return common.gunicorn(MODULE, bind=bind)
    return common.uwsgi(MODULE, http=bind, activated=False)


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(") ", 1)[1].split()
    except OSError:
        return 0.0  # gone meanwhile
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    port = common.free_port()
    server = server_for(name, port, tmp)
    log = tmp / f"{name}.log"
    log.unlink(missing_ok=True)
    argv = ["prlimit", f"--nofile={args.limit}:{args.limit}", "--", *server.argv]
    proc = common.Running(server, log, argv)
    flood: list[socket.socket] = []
    try:
        common.wait_for_port(proc, port, 20)
        time.sleep(0.5)  # uWSGI's http router and gunicorn's workers settle
        workers = sorted(set(common.descendants(proc.pid)) - {proc.pid})
        size = log.stat().st_size
        for _ in range(args.flood):
            try:
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break  # a server whose backlog is full: the rest of the flood is refused
        before = {pid: cpu_seconds(pid) for pid in workers if os.path.exists(f"/proc/{pid}")}
        start = time.monotonic()
        time.sleep(args.hold)
        spent = time.monotonic() - start
        # Workers born during the hold (replacements of crashed ones) count from zero.
        now_workers = set(common.descendants(proc.pid)) - {proc.pid}
        cpu = max(
            ((cpu_seconds(pid) - before.get(pid, 0.0)) / spent for pid in now_workers),
            default=0.0,
        )
        said = log.read_bytes()[size:]
        same = sorted(set(common.descendants(proc.pid)) - {proc.pid}) == workers
        for sock in flood:
            sock.close()
        closed = time.monotonic()
        while not common.http_ok(port, timeout=1.0):
            if time.monotonic() - closed > 30:
                break
            time.sleep(0.01)
        recovered = time.monotonic() - closed
        return {
            "connected": len(flood),
            "cpu": 100 * cpu,
            "lines": said.count(b"\n"),
            "bytes": len(said),
            "same": float(same),
            "recovered": recovered,
        }
    finally:
        for sock in flood:
            sock.close()
        proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=256)
    parser.add_argument("--hold", type=float, default=3.0)
    parser.add_argument("--only", default=",".join(SERVERS))
    args = parser.parse_args()
    names = args.only.split(",")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * args.flood), hard))
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="sockactd-flood-") as tmp_name:
        tmp = Path(tmp_name)
        common.pin_sockactd(tmp)
        for _ in range(args.rounds):
            for name in names:
                results[name].append(one_round(name, args, tmp))
    rows = []
    for name, runs in results.items():
        rows.append([
            name,
            " / ".join(f"{r['cpu']:.1f}" for r in runs),
            " / ".join(str(int(r["lines"])) for r in runs),
            " / ".join(f"{r['bytes'] / 1024:.1f}" for r in runs),
            "yes" if all(r["same"] for r in runs) else "no",
            f"{statistics.median(r['recovered'] for r in runs) * 1000:.0f}",
            " / ".join(str(int(r["connected"])) for r in runs),
        ])  # fmt: skip
    print(f"Machine: {common.machine_summary()}\n")
    header = ["server", "busiest worker CPU % (each round)", "log lines", "log KiB",
              "same workers after", "fresh client served after (ms, median)",
              "flood connected"]  # fmt: skip
    print(common.markdown_table(header, rows))
    print(f"\n- this table: `{' '.join(sys.argv)}`, sockactd {common.sockactd_version()}")


if __name__ == "__main__":
    main()
