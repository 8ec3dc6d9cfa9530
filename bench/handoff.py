"""What threaded serving costs per request over inline: CPU time and context switches, at git refs.

    .venv/bin/python bench/handoff.py --refs main,HEAD [--threads 1,4,8] [--connections 16]
                                      [--rounds 3] [--duration 3]

Issue 17: with --threads a request crosses from the loop thread to a handler thread and back
(worker/threads.py); with one thread it is served inline. The hello-world app makes that
hand-off visible (Django's own CPU per request is 20-200x the hand-off's). For each ref,
thread setting and round (interleaved, order reversed every other round), sockactd (2
processes, bench/apps/hello.py) serves wrk with keep-alive for --duration seconds; the CPU
time of every thread of the master and its workers (/proc/PID/task/TID/schedstat) and their
voluntary and involuntary context switches are divided by the requests wrk counted. Prints
one line per ref and setting with every round.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common


def one_run(threads: int, args: argparse.Namespace, log: Path) -> str:
    port = common.free_port()
    extra = ["--threads", str(threads)]
    server = common.sockactd("hello:app", http=f"127.0.0.1:{port}", processes=2, extra=extra)
    url = f"http://127.0.0.1:{port}/"
    with common.running(server, log, port) as proc:
        common.run_wrk(common.wrk_argv(url, 1, args.connections, 2, False), 1)
        pids = common.descendants(proc.pid)
        before = common.cpu_counters(pids)
        found = common.run_wrk(common.wrk_argv(url, args.duration, args.connections, 2, False),
                               args.duration)  # fmt: skip
        after = common.cpu_counters(pids)
    n = max(1, found.requests)
    cpu, vol, invol = ((a - b) / n for a, b in zip(after, before, strict=True))
    return (f"{found.requests_per_s:,.0f}/s p99 {found.p99_ms:.1f} ms, cpu {cpu / 1000:.0f} us, "
            f"switches {vol:.2f} + {invol:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", required=True, help="comma-separated git refs")
    parser.add_argument("--threads", default="1,4,8")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    settings = [int(n) for n in args.threads.split(",")]
    runs: dict[tuple[int, str], list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="sockactd-handoff-") as tmp_name:
        tmp = Path(tmp_name)
        pins: dict[str, dict[str, str]] = {}
        for ref in args.refs.split(","):
            where = tmp / f"pin-{len(pins)}"
            where.mkdir()
            commit = common.pin_sockactd(where, ref)
            pins[f"{ref}@{commit}"] = common.pinned()
        for number in range(args.rounds):
            for threads in settings:
                names = list(pins) if number % 2 == 0 else list(pins)[::-1]
                for name in names:
                    common.use_pinned(pins[name])
                    runs.setdefault((threads, name), []).append(
                        one_run(threads, args, tmp / "sockactd.log")
                    )
        print(f"Machine: {common.machine_summary()}\n")
    for (threads, name), found in sorted(runs.items()):
        print(f"- {threads} threads, {name}: " + " | ".join(found))
    print(f"\n- this list: `.venv/bin/python bench/handoff.py {' '.join(sys.argv[1:])}`")


if __name__ == "__main__":
    main()
