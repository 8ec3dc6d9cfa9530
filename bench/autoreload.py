"""Reload on save: sockactd's py-autoreload (inotify, and the stat scan) vs uWSGI's and gunicorn's.

    .venv/bin/python bench/autoreload.py [--rounds 3] [--clients 2]
                                         [--servers sockactd,sockactd-poll,uwsgi,gunicorn] [--write]

Each round, for each server in turn (interleaved, so the shared machine's load falls on
all alike): bench/apps/versioned.py copied to a temporary directory, 2 workers on
127.0.0.1, `--clients` load processes (a new connection per request) for 9 seconds.
At 1.5 s the module is saved with VERSION 2 (written in place, as an editor does), at
4 s saved with a syntax error, at 6.5 s saved fixed with VERSION 3.
  sockactd        --lazy-apps --py-autoreload 1 (inotify)
  sockactd-poll   --lazy-apps --py-autoreload 1 --reload-engine poll (the stat scan)
  uwsgi           --py-autoreload 1
  gunicorn        --reload (sync workers)
Reported (median over rounds): seconds from the save until the first response of the new
version and until every response is (the end of the last old one: with failures between,
the first is the one to read), failed requests, and what the broken save did: failed
requests and which versions answered between it and the fix. `--write` replaces the
`autoreload` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, loadgen

MODULE = "benchapp:app"
SAVES = ((1.5, "2"), (4.0, None), (6.5, "3"))  # (at, VERSION), None: a syntax error
DURATION = 9.0


def server_for(name: str, tmp: Path, port: int) -> common.Server:
    bind = f"127.0.0.1:{port}"
    if name.startswith("sockactd"):
        extra = ["--py-autoreload", "1", "--control-socket", str(tmp / "ctl.sock")]
        if name == "sockactd-poll":
            extra += ["--reload-engine", "poll"]
        server = common.sockactd(MODULE, http=bind, lazy=True, pythonpath=tmp, extra=extra)
        return dataclasses.replace(server, name=name)
    if name == "uwsgi":
        server = common.uwsgi(MODULE, http=bind, pythonpath=tmp)
        return dataclasses.replace(server, argv=(*server.argv, "--py-autoreload", "1"))
    server = common.gunicorn(MODULE, bind=bind, chdir=tmp)
    return dataclasses.replace(server, argv=(*server.argv[:-1], "--reload", server.argv[-1]))


def save(path: Path, version: str | None) -> None:
    source = (common.APPS / "versioned.py").read_text()
    if version is None:
        source = source.replace('VERSION = "1"', 'VERSION = "broken"\nif True\n')
    else:
        source = source.replace('VERSION = "1"', f'VERSION = "{version}"')
    path.write_text(source)


def first_new(outcomes: list[loadgen.Outcome], trigger: float, new: str) -> float | None:
    """Seconds from `trigger` to the end of the first successful response of version `new`."""
    ends = [o.end for o in outcomes if o.kind is loadgen.Kind.OK and o.version == new]
    return max(min(ends) - trigger, 0.0) if ends else None


@dataclasses.dataclass
class Run:
    first_v2: float | None
    to_v2: float | None
    first_v3: float | None
    to_v3: float | None
    failed: int
    broken_failed: int
    broken_versions: str


def one_run(name: str, clients: int) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-autoreload-") as tmp_name:
        tmp = Path(tmp_name)
        module = tmp / "benchapp.py"
        save(module, "1")
        port = common.free_port()
        with common.running(server_for(name, tmp, port), tmp / "server.log", port):
            time.sleep(0.5)  # every worker up (the port answers when the first one does)
            load = loadgen.Load(port, DURATION, clients)
            times = []
            for at, version in SAVES:
                time.sleep(max(0.0, load.started + at - time.monotonic()))
                times.append(time.monotonic())
                save(module, version)
            outcomes = load.join()
    fail = loadgen.failures
    window = [o for o in outcomes if times[0] <= o.start < times[1]]
    broken = [o for o in outcomes if times[1] + 1.0 <= o.start < times[2]]  # after 1 s
    after = [o for o in outcomes if o.start >= times[2]]
    versions = sorted({o.version for o in broken if o.kind is loadgen.Kind.OK})
    return Run(
        first_v2=first_new(window, times[0], "2"),
        to_v2=loadgen.time_to_new(window, times[0], "2"),
        first_v3=first_new(after, times[2], "3"),
        to_v3=loadgen.time_to_new(after, times[2], "3"),
        failed=sum(fail(outcomes).values()),
        broken_failed=sum(fail(broken).values()),
        broken_versions=",".join(versions) or "none",
    )


def median(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if len(known) < len(values):
        return f"never in {len(values) - len(known)} of {len(values)}"
    return f"{statistics.median(known):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--servers", default="sockactd,sockactd-poll,uwsgi,gunicorn")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    names = args.servers.split(",")
    common.pin_sockactd(Path(tempfile.mkdtemp(prefix="bench-autoreload-pin-")))
    runs: dict[str, list[Run]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        for name in names:
            run = one_run(name, args.clients)
            runs[name].append(run)
            print(f"round {round_number + 1} {name}: {run}", flush=True)
    rows = [
        (
            name,
            median([r.first_v2 for r in results]),
            median([r.to_v2 for r in results]),
            median([r.first_v3 for r in results]),
            median([r.to_v3 for r in results]),
            "/".join(str(r.failed) for r in results),
            "/".join(str(r.broken_failed) for r in results),
            "/".join(r.broken_versions for r in results),
        )
        for name, results in runs.items()
    ]
    header = ("server", "save -> first new (v2)", "save -> all new (v2)", "fix -> first new (v3)",
              "fix -> all new (v3)",
              "failed requests", "failed while broken", "versions while broken")  # fmt: skip
    table = common.markdown_table(header, rows)
    command = f"`.venv/bin/python bench/autoreload.py --rounds {args.rounds} --clients " \
        f"{args.clients} --servers {args.servers}`"  # fmt: skip
    body = (
        "## Reload on save (py-autoreload)\n\n"
        f"{common.machine_summary()}\n\n{command}; per round: save VERSION 2 at 1.5 s, a "
        "syntax error at 4 s, the fix (VERSION 3) at 6.5 s, under load (a new connection per "
        'request). Times are medians; failures per round. "While broken": from 1 s after '
        'the broken save until the fix. "All new" is the end of the last response of an older '
        'version: failed requests in between do not count, so read it beside "first new".'
        f"\n\n{table}"
    )
    print(body)
    if args.write:
        common.write_section("autoreload", body)


if __name__ == "__main__":
    main()
