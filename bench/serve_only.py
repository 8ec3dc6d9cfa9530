"""Benchmark serve() alone (no master): N forked workers on one socket, driven by wrk.

    .venv/bin/python bench/serve_only.py [--workers N] [--threads 1] [--seconds 10] [--close]

--workers defaults to one per usable CPU and wrk runs common.wrk_threads() threads (2 and
1 on a 2-CPU machine). Prints wrk's summary. Also `--hold` to keep serving until Ctrl-C
(for manual poking).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from tests.apps.hello import app
from tests.integration.serve_child import serving


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=common.machine_workers())
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--close", action="store_true", help="new connection per request")
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args()
    with serving(app, workers=args.workers, threads=args.threads, quiet=True) as served:
        url = f"http://127.0.0.1:{served.port}/"
        if args.hold:
            print(url, flush=True)
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                return
        wrk = shutil.which("wrk")
        if wrk is None:
            sys.exit("needs wrk")
        cmd = [
            wrk,
            f"-t{common.wrk_threads()}",
            f"-c{args.connections}",
            f"-d{args.seconds}s",
            "--latency",
            url,
        ]
        if args.close:
            cmd[1:1] = ["-H", "Connection: close"]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        served.stop()


if __name__ == "__main__":
    main()
