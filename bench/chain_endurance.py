"""Endurance: N back-to-back chain reloads with 8 workers under load (issue 12's proof).

    .venv/bin/python bench/chain_endurance.py [--reloads 300] [--workers 8] [--clients 4]

One sockactd (site app, --lazy-apps, --processes W) on 127.0.0.1; `--clients`
threads send GET / on a new connection each, all along; the script runs
`sockactctl reload --mode chain --wait` N times in a row. Reported: reloads
done and aborted, requests served and failed (by kind), whether the master PID
is the one it started with, and the reload durations (median, p95, max).
The notify socket is drained all along, as systemd does. Same scenario as
tests/integration/test_chain_stress.py, which runs about a minute of it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.server import Load
from tests.integration.test_chain_stress import draining_notifications
from tests.integration.test_reload_modes import start_site


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=300)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="sockactd-endurance-") as tmp:
        srv, port, _site = start_site(Path(tmp), "--processes", str(args.workers))
        try:
            master = srv.pid
            durations: list[float] = []
            aborted: list[str] = []
            started = time.monotonic()
            limit = 30.0 * args.reloads + 60
            with draining_notifications(srv), Load(port, args.clients, limit=limit) as load:
                load.wait_requests(50)
                for i in range(args.reloads):
                    begin = time.monotonic()
                    result = srv.ctl("reload", "--mode", "chain", "--wait")
                    durations.append(time.monotonic() - begin)
                    if result.returncode != 0:
                        aborted.append(f"reload {i + 1}: exit {result.returncode} {result.stderr}")
                    if srv.process is None or srv.process.poll() is not None:
                        aborted.append(f"master gone after reload {i + 1}")
                        break
                load.wait_requests(50)
            elapsed = time.monotonic() - started
            alive = srv.process is not None and srv.process.poll() is None
            generation = srv.status()["generation"] if alive else None
        finally:
            srv.stop()
    durations.sort()
    print(f"commit {commit}; {args.workers} workers, {args.clients} load threads")
    print(f"reloads: {len(durations)} asked, {len(aborted)} aborted; generation {generation}")
    print(f"requests: {load.ok} ok, failures {dict(load.failures) or 0}")
    print(f"master pid {master}: {'unchanged, alive' if alive else 'GONE'}")
    print(
        f"reload time: median {statistics.median(durations):.2f}s, "
        f"p95 {durations[int(len(durations) * 0.95) - 1]:.2f}s, max {durations[-1]:.2f}s; "
        f"run {elapsed:.0f}s"
    )
    for line in aborted[:10]:
        print("  " + line)
    return 0 if not aborted and not load.failures and alive else 1


if __name__ == "__main__":
    sys.exit(main())
