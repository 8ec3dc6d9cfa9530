"""Pinning: how long clients parked on a busy worker wait while other workers idle (issue 17).

    .venv/bin/python bench/pinning.py [--refs main,HEAD] [--rounds 3] [--repeats 3]
                                      [--clients 30] [--slow 2] [--threads 1] [--write]

sockactd (3 workers, `--threads T`) serves bench/apps/holdup.py. CLIENTS keep-alive
clients connect one at a time, 20 ms apart (idle workers take turns accepting), and each
sends one request, so every client is parked on the worker that answered it. Then, on
the worker holding the most, one client (T clients with threads) sends a request held
SLOW seconds, and 5 ms later each other client parked there sends a quick one. Measured
for each quick request: the time from sending it to its answer arriving (poll, not
read order), and which worker answered. Reported per ref: median, p90 and max of those
waits over every repeat of every round, how many were answered by another worker, and
how many were lost (an error or no answer within SLOW + 5 s). Rounds interleave the
refs (A, B, A, B, ...); each ref runs from a pinned, installed copy of its commit.
`--write` replaces the `pinning` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import http.client
import select
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

WORKERS = 3


def _get(sock: socket.socket, query: str = "") -> None:
    sock.sendall(f"GET /?{query} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())


def _answer(sock: socket.socket) -> int:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    if response.status != 200:
        raise OSError(f"status {response.status}")
    return int(body)


def one_repeat(port: int, args: argparse.Namespace) -> tuple[list[float], int, int]:
    """(waits in seconds, answered by another worker, lost) for one slow request."""
    socks: list[socket.socket] = []
    try:
        by_worker: dict[int, list[socket.socket]] = {}
        for _ in range(args.clients):
            time.sleep(0.02)  # every worker back in epoll_wait: accepts take turns
            sock = socket.create_connection(("127.0.0.1", port), timeout=args.slow + 5)
            socks.append(sock)
            _get(sock)
            by_worker.setdefault(_answer(sock), []).append(sock)
        busy, parked = max(by_worker.items(), key=lambda item: len(item[1]))
        slow, quick = parked[: args.threads], parked[args.threads :]
        for sock in slow:
            _get(sock, f"s={args.slow}")
        time.sleep(0.005)
        sent = {}
        for sock in quick:
            sent[sock.fileno()] = time.monotonic()
            _get(sock)
        waits, elsewhere, lost = [], 0, 0
        poller = select.poll()
        for sock in quick:
            poller.register(sock, select.POLLIN)
        arrived: dict[int, float] = {}
        deadline = time.monotonic() + args.slow + 5
        while len(arrived) < len(quick) and time.monotonic() < deadline:
            for fd, _ in poller.poll(100):
                arrived.setdefault(fd, time.monotonic())
                poller.unregister(fd)
        for sock in quick:
            fd = sock.fileno()
            try:
                if fd not in arrived:
                    raise OSError("no answer")
                pid = _answer(sock)
            except OSError:
                lost += 1
                continue
            waits.append(arrived[fd] - sent[fd])
            elsewhere += pid != busy
        for sock in slow:
            _answer(sock)
        return waits, elsewhere, lost
    finally:
        for sock in socks:
            sock.close()


def measure(args: argparse.Namespace, tmp: Path) -> tuple[list[float], int, int]:
    port = common.free_port()
    server = common.sockactd(
        "holdup:app",
        http=f"127.0.0.1:{port}",
        processes=WORKERS,
        extra=["--threads", str(args.threads)],
    )
    waits: list[float] = []
    elsewhere = lost = 0
    with common.running(server, tmp / "sockactd.log", port):
        for _ in range(args.repeats):
            found, moved, gone = one_repeat(port, args)
            waits += found
            elsewhere += moved
            lost += gone
    return waits, elsewhere, lost


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}" if seconds >= 0.01 else f"{seconds * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", default="HEAD")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--slow", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    refs = [ref for ref in args.refs.split(",") if ref]
    results: dict[str, tuple[list[float], int, int]] = {ref: ([], 0, 0) for ref in refs}
    commits: dict[str, str] = {}
    for ref, commits[ref], tmp in common.pinned_rounds(refs, args.rounds):
        waits, moved, gone = measure(args, tmp)
        old = results[ref]
        results[ref] = (old[0] + waits, old[1] + moved, old[2] + gone)
    rows = []
    for ref, (waits, moved, gone) in results.items():
        waits.sort()
        p90 = waits[int(0.9 * (len(waits) - 1))] if waits else float("nan")
        rows.append([
            f"{ref} ({commits[ref]})", len(waits) + gone,
            _ms(statistics.median(waits)) if waits else "-", _ms(p90) if waits else "-",
            _ms(waits[-1]) if waits else "-", moved, gone,
        ])  # fmt: skip
    table = common.markdown_table(
        ["sockactd", "parked requests", "wait p50 ms", "p90 ms", "max ms", "by another worker",
         "lost"],
        rows,
    )  # fmt: skip
    command = " ".join(["bench/pinning.py", *sys.argv[1:]])
    body = (
        f"## Pinning: clients parked on a busy worker (`{command}`)\n\n"
        f"{WORKERS} workers x {args.threads} thread(s), {args.clients} keep-alive clients, "
        f"one request held {args.slow:g} s on the worker holding the most of them, "
        f"{args.rounds} rounds x {args.repeats} repeats, refs interleaved. "
        "Wait: from a parked client's request to its answer.\n\n"
        f"{table}\n{common.machine_summary()}\n"
    )
    print(body)
    if args.write:
        common.write_section(f"pinning-t{args.threads}", body)


if __name__ == "__main__":
    main()
