"""CPU time of sockactd's HTTP request parser at several git refs, rounds interleaved.

    .venv/bin/python bench/parse_cost.py --refs main,HEAD [--rounds 7] [--requests 100000]

Each ref's protocols/ is extracted with `git archive` and imported in a child process,
which feeds `--requests` copies of each request below to one RequestParser (a keep-alive
connection: one read per request, events popped) and prints CPU time (process_time) per
request. Children for the refs run in turn, round after round, so drifts in a shared
machine's load hit every ref alike; the table shows the median and the spread. CPU
time, not wall time: other processes on the machine slow it less than they slow wrk.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

REQUESTS = {
    "GET as wrk sends it": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    "GET as a browser sends it": (
        b"GET /static/app.js?v=3 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 "
        b"(X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: */*\r\n"
        b"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
        b"Connection: keep-alive\r\nReferer: https://www.example.com/\r\nCookie: a=1; b=2\r\n"
        b"\r\n"
    ),
    "POST, 64-byte body": (
        b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 64\r\n\r\n" + b"x" * 64
    ),
}

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from sockactd.protocols.http import RequestParser
requests, count = json.loads(sys.argv[2]), int(sys.argv[3])
out = {}
for name, text in requests.items():
    data = text.encode("latin-1")
    parser = RequestParser(16384)
    events = parser.events
    feed = parser.feed
    started = time.process_time()
    for _ in range(count):
        feed(data)
        events.clear()
    out[name] = (time.process_time() - started) / count * 1e9
print(json.dumps(out))
"""


def extract(ref: str, into: Path) -> str:
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    archive = subprocess.Popen(
        ["git", "-C", str(ROOT), "archive", commit, "sockactd"], stdout=subprocess.PIPE
    )
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise RuntimeError(f"git archive {commit} failed")
    return commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", default="main,HEAD")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args()
    refs = [r for r in args.refs.split(",") if r]
    texts = json.dumps({k: v.decode("latin-1") for k, v in REQUESTS.items()})
    with tempfile.TemporaryDirectory(prefix="sockactd-parse-") as tmp_name:
        tmp = Path(tmp_name)
        trees, commits = {}, {}
        for number, ref in enumerate(refs):
            trees[ref] = tmp / str(number)
            trees[ref].mkdir()
            commits[ref] = extract(ref, trees[ref])
        runs: dict[str, list[dict[str, float]]] = {ref: [] for ref in refs}
        for _ in range(args.rounds):
            for ref in refs:
                done = subprocess.run(
                    [sys.executable, "-c", CHILD, str(trees[ref]), texts, str(args.requests)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                runs[ref].append(json.loads(done.stdout))
    print(f"CPU ns per request (process_time), {args.rounds} rounds interleaved across refs, "
          f"{args.requests} requests a run: median (min-max)\n")  # fmt: skip
    print("| request | " + " | ".join(f"{r} ({commits[r]})" for r in refs) + " |")
    print("|---|" + "---|" * len(refs))
    for name in REQUESTS:
        cells = []
        for ref in refs:
            values = sorted(run[name] for run in runs[ref])
            cells.append(f"{statistics.median(values):,.0f} ({values[0]:,.0f}-{values[-1]:,.0f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n- this table: `bench/parse_cost.py {' '.join(sys.argv[1:])}`")


if __name__ == "__main__":
    main()
