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
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from tests.integration.test_worker_crashes import crash_while_serving

SITE = common.ROOT / "tests" / "apps"
MODULE = "site_app:app"


def measure(port: int, window: float) -> dict[str, float]:
    run = crash_while_serving(port, window)
    return {
        "crashes": run.crashes,
        "ok": len(run.served),
        "longest": run.longest_gap(),
        "without": run.seconds_without(),
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
