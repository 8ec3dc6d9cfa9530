"""One client crashing workers: how much of the time the site still answers (issue 12, item 5).

    .venv/bin/python bench/crash_client.py [--window 40] [--servers sockactd,gunicorn,uwsgi]

Each server runs tests/apps/site_app.py with 2 workers on 127.0.0.1. For
--window seconds one client requests /crash (the worker calls os._exit) every
0.1 s while two clients GET / back to back, a new connection each. Reported per
server: crash requests sent, successful responses, the longest time between two
successful responses, and the time without any: the 100 ms slots of the window
in which no successful response arrived. Servers run one after the other in
the order given (the machine is shared: compare within one run).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

SITE = common.ROOT / "tests" / "apps"
MODULE = "site_app:app"


def get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def measure(port: int, window: float) -> dict[str, float]:
    stop = threading.Event()
    served: list[float] = []
    crashes = [0]

    def crasher() -> None:
        while not stop.wait(0.1):
            crashes[0] += 1
            try:
                get(port, "/crash")
            except (OSError, http.client.HTTPException):
                pass

    def client() -> None:
        while not stop.is_set():
            try:
                if get(port, "/") == 200:
                    served.append(time.monotonic())
            except (OSError, http.client.HTTPException):
                pass

    threads = [threading.Thread(target=f, daemon=True) for f in (crasher, client, client)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    stop.wait(window)
    stop.set()
    end = time.monotonic()
    for thread in threads:
        thread.join(10)
    marks = [start, *sorted(t for t in served if t <= end), end]
    slots = {int((t - start) * 10) for t in served} & set(range(int(window * 10)))
    return {
        "crashes": crashes[0],
        "ok": len(served),
        "longest": max(b - a for a, b in itertools.pairwise(marks)),
        "without": (int(window * 10) - len(slots)) / 10,
    }


def server_for(name: str, port: int) -> common.Server:
    bind = f"127.0.0.1:{port}"
    if name == "sockactd":
        return common.sockactd(MODULE, http=bind, processes=2, pythonpath=SITE)
    if name == "gunicorn":
        return common.gunicorn(MODULE, bind=bind, workers=2, chdir=SITE)
    return common.uwsgi(MODULE, http=bind, processes=2, pythonpath=SITE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=40.0)
    parser.add_argument("--servers", default="sockactd,gunicorn,uwsgi")
    args = parser.parse_args()
    print(f"sockactd {common.sockactd_version()}; window {args.window:g}s; 2 workers each")
    print("| server | crash requests | successful responses | longest gap | time without one |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="sockactd-crash-") as tmp:
        for name in args.servers.split(","):
            port = common.free_port()
            log = Path(tmp) / f"{name}.log"
            with common.running(server_for(name, port), log, port):
                result = measure(port, args.window)
            print(
                f"| {name} | {result['crashes']:.0f} | {result['ok']:.0f} | "
                f"{result['longest']:.2f} s | {result['without']:.1f} s |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
