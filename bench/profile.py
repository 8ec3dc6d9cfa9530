"""Where a sockactd worker spends its CPU under wrk: py-spy samples of one worker, summed up.

    .venv/bin/python bench/profile.py [--duration 10] [--keepalive] [--top 20] [--write]

Starts sockactd (one worker per usable CPU, common.machine_workers(); app
bench/apps/hello.py), drives it with wrk (common.wrk_threads() threads, a new connection
per request unless --keepalive), and samples the first worker with `py-spy record
--format raw` (py-spy from PyPI, in .venv; it needs ptrace, so root or
CAP_SYS_PTRACE). Prints the top functions by own time (the sampled frame itself)
and by inclusive time. `--write` replaces the `profile` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

PY_SPY = str(common.VENV_BIN / "py-spy")
_COUNT = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")


def summarise(raw: str) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """Samples, own and inclusive counts per `function (file:line-less)` from collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        match = _COUNT.match(line.strip())
        if match is None:
            continue
        count = int(match["count"])
        frames = match["stack"].split(";")
        total += count
        own[_short_path(frames[-1])] += count
        for name in {_function(frame) for frame in frames}:
            inclusive[name] += count
    return total, own, inclusive


def _function(frame: str) -> str:
    """`serve (sockactd/worker/serve.py:120)` -> `serve (sockactd/worker/serve.py)`."""
    return re.sub(r":\d+\)$", ")", _short_path(frame))


def _short_path(frame: str) -> str:
    frame = re.sub(r"/tmp/sockactd-profile-[^/]+/src/", "", frame.strip())
    return frame.replace(str(common.ROOT) + "/", "")


def profile(args: argparse.Namespace, tmp: Path) -> tuple[str, list[str]]:
    port = common.free_port()
    server = common.sockactd("hello:app", http=f"127.0.0.1:{port}", control=tmp / "c.sock",
                             processes=common.machine_workers())  # fmt: skip
    out = tmp / "profile.raw"
    url = f"http://127.0.0.1:{port}/"
    threads = common.wrk_threads()
    wrk_argv = common.wrk_argv(url, args.duration + 2, 50, threads, close=not args.keepalive)
    spy_argv = [PY_SPY, "record", "--format", "raw", "--rate", "250", "--nonblocking"]
    with common.running(server, tmp / "sockactd.log", port) as proc:
        worker = common.descendants(proc.pid)[1]
        spy_argv += ["--duration", f"{args.duration:g}", "--output", str(out)]
        spy_argv += ["--pid", str(worker)]
        wrk = subprocess.Popen(wrk_argv, stdout=subprocess.DEVNULL)
        try:
            time.sleep(1)  # sample the steady state, not wrk's connection ramp-up
            subprocess.run(spy_argv, check=True, timeout=args.duration + 30)
        finally:
            wrk.wait(args.duration + 30)
    return out.read_text(), [common.shown_argv(argv) for argv in (server.argv, wrk_argv, spy_argv)]


def render(raw: str, commands: list[str], args: argparse.Namespace) -> str:
    total, own, inclusive = summarise(raw)
    kind = "keep-alive" if args.keepalive else "new connection per request"
    lines = [f"Machine: {common.machine_summary()}\n"]
    lines.append(
        f"One worker of two, {args.duration:g} s under wrk ({kind}), py-spy at 250 Hz, "
        f"{total} samples of CPU time (idle samples excluded).\n"
    )
    rows = [
        [f"`{name}`", f"{100 * count / total:.1f}%"] for name, count in own.most_common(args.top)
    ]
    lines.append(
        "Top lines by own time (py-spy without --native charges time spent inside a C call, "
        "e.g. `select`, `accept`, `send`, `close`, to the Python line that made it; files "
        "and line numbers as of the commit profiled, named above):\n"
    )
    lines.append(common.markdown_table(["function (file:line)", "own"], rows))
    rows = [
        [f"`{name}`", f"{100 * count / total:.1f}%"]
        for name, count in inclusive.most_common()
        if count < 0.98 * total  # leave out the stack every sample shares (main -> serve)
    ][: args.top]
    lines.append("\nTop functions by inclusive time (below the serve loop):\n")
    lines.append(common.markdown_table(["function", "inclusive"], rows))
    lines.append("\nCommands:\n")
    lines += [f"- `{command}`" for command in commands]
    lines.append(f"- this table: `{common.shown_argv(sys.argv)}`\n")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--keepalive", action="store_true")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sockactd-profile-") as tmp_name:
        common.pin_sockactd(Path(tmp_name))
        raw, commands = profile(args, Path(tmp_name))
        report = render(raw, commands, args)
    print(report)
    if args.write:
        kind = "keepalive" if args.keepalive else "close"
        title = "keep-alive" if args.keepalive else "new connection per request"
        common.write_section(f"profile-{kind}", f"## Profile of a worker ({title})\n\n" + report)


if __name__ == "__main__":
    main()
