"""Many idle keep-alive clients (issue 17 benchmark 3), and what happens past the limits.

    .venv/bin/python bench/many_conns.py [--clients 100,1000,10000] [--duration 10] [--warmup 2]
        [--rounds 1] [--probes 7] [--only sockactd,uwsgi,gunicorn] [--worker-connections 10000]
        [--limits sockactd] [--fd-limit 256] [--fd-clients 1000] [--backlog 8]
        [--queue-clients 200] [--hold 2] [--write]

Servers, 2 workers each, app bench/apps/hello.py: sockactd; uWSGI (Debian's,
`--http11-socket`, which keeps connections alive); gunicorn (`gthread`, 1 thread). Each
runs under `prlimit` with the hard open-file limit this process has, as a unit's
`LimitNOFILE=` would give it: sockactd with the soft limit at 1024 (it raises its soft
limit to the hard one), the peers with soft = hard (they do not raise it).
`--worker-connections` goes to sockactd and gunicorn alike (both default to 1,000 per
worker, i.e. 2,000 connections held by 2 workers; above that the rest wait or churn).

Per server and client count N (bench/idle_clients.py: N keep-alive clients, each sending
one request a second at its own phase; connects spread over N/2000 s): the whole server's
PSS (master and workers, /proc/PID/smaps_rollup) idle before the clients, with them
connected (mid-window) and after they left; PSS per connection = (connected - idle) / N;
the kernel's TCP buffer memory (/proc/net/sockstat, both ends of every connection: not
in any PSS); req/s, p50, p99 over the window; clients that ever waited over 1 s (connect
or answer); the server's CPU; a fresh client's time from connect() to its whole answer
while the N are connected, `--probes` times spread over the window: median and max.

Past the limits (`--limits`, default sockactd; "none" to skip):
- fd limit: the server under `prlimit --nofile=L:L` (it cannot raise it) with
  `--fd-clients` clients (more than L): req/s, clients served in the window, connections
  the server closed, its CPU per answered request, the lines it logged, then the time
  from the clients leaving to a fresh client's 200 and whether the workers are the same.
- accept queue full: listen backlog `--backlog`, the workers stopped (SIGSTOP) for `--hold`
  seconds, meanwhile `--queue-clients` clients connect at once and send a request; the
  kernel queues backlog+1 per listener and drops the others' SYNs (they retry after
  1 s, 3 s, ...). Then SIGCONT: when each client was answered, how many waited,
  were refused or never answered, and whether the same workers serve a fresh client.

Rounds interleave the servers; the limits run in the first round only. `--write`
replaces the `many-connections` section of bench/RESULTS.md. This module is over 300
lines: the three runs share its set-up and report, and nothing here is reused elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import resource
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.closedloop import percentile
from bench.idle_clients import Plan, start_idle_clients

MODULE = "hello:app"
SERVERS = ("sockactd", "uwsgi", "gunicorn")
WORKERS = 2
CONNECTS_PER_S = 2000
PROBE_TIMEOUT = 5.0


# ---------------------------------------------------------------- servers


def server_for(name: str, port: int, args: argparse.Namespace, backlog: int = 0) -> common.Server:
    bind = f"127.0.0.1:{port}"
    if name == "sockactd":
        extra = ["--worker-connections", str(args.worker_connections)]
        if backlog:
            extra += ["--listen", str(backlog)]
        return common.sockactd(MODULE, http=bind, processes=WORKERS, extra=extra)
    if name == "uwsgi":
        server = common.uwsgi(MODULE, http11=bind, processes=WORKERS)
        extra = ["--listen", str(backlog)] if backlog else []
        return dataclasses.replace(server, argv=(*server.argv, *extra))
    if name == "gunicorn":
        server = common.gunicorn(MODULE, bind=bind, workers=WORKERS, threads=1)
        extra = ["--worker-connections", str(args.worker_connections)]
        if backlog:
            extra += ["--backlog", str(backlog)]
        return dataclasses.replace(server, argv=(*server.argv[:-1], *extra, server.argv[-1]))
    raise ValueError(name)


def limited(server: common.Server, soft: int, hard: int) -> list[str]:
    return ["prlimit", f"--nofile={soft}:{hard}", "--", *server.argv]


def unit_limits(name: str) -> tuple[int, int]:
    """(soft, hard) as a unit with LimitNOFILE=<our hard limit> would start `name`."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return (1024, hard) if name == "sockactd" else (hard, hard)


@contextlib.contextmanager
def started(name: str, argv: list[str], server: common.Server, port: int, tmp: Path):  # type: ignore[no-untyped-def]
    log = tmp / f"{name}.log"
    log.unlink(missing_ok=True)
    proc = common.Running(server, log, argv)
    try:
        common.wait_for_port(proc, port, 20)
        yield proc
    finally:
        proc.stop()


def workers_of(proc: common.Running) -> list[int]:
    return sorted(set(common.descendants(proc.pid)) - {proc.pid})


def pss_total(proc: common.Running) -> int:
    total = 0
    for pid in common.descendants(proc.pid):
        with contextlib.suppress(OSError):
            total += common.pss_kib(pid)
    return total


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(") ", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(proc: common.Running) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in common.descendants(proc.pid)}


def cpu_share(before: dict[int, float], after: dict[int, float], seconds: float) -> float:
    """Percent of one core the server used (processes born meanwhile count from zero)."""
    spent = sum(after[pid] - before.get(pid, 0.0) for pid in after)
    return 100 * spent / seconds


def kernel_kib() -> tuple[int, int]:
    """(slab, TCP buffers) of the whole machine in KiB: kernel memory no PSS contains.

    Slab holds each socket's own structures (sock, file, epoll item) at both ends of
    a connection; `mem` of /proc/net/sockstat counts the pages queued in TCP buffers.
    """
    slab = tcp = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Slab:"):
            slab = int(line.split()[1])
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            tcp = int(fields[fields.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    return slab, tcp


def warm(port: int, requests: int = 20) -> None:
    for _ in range(requests):
        common.http_ok(port)


def probe_ms(port: int) -> float:
    """A fresh client: connect() to the whole answer, in ms (PROBE_TIMEOUT on failure)."""
    began = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as conn:
            conn.settimeout(max(0.01, PROBE_TIMEOUT - (time.monotonic() - began)))
            conn.sendall(b"GET / HTTP/1.1\r\nHost: probe\r\n\r\n")
            got = b""
            while not (b"\r\n\r\n" in got and got.endswith(b"Hello, World!")):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                got += chunk
            if not got.startswith(b"HTTP/1.1 200"):
                return PROBE_TIMEOUT * 1000
    except OSError:
        return PROBE_TIMEOUT * 1000
    return (time.monotonic() - began) * 1000


def sleep_until(when: float) -> None:
    time.sleep(max(0.0, when - time.monotonic()))


# ---------------------------------------------------------------- N idle clients


def many_clients(name: str, clients: int, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    port = common.free_port()
    server = server_for(name, port, args)
    with started(name, limited(server, *unit_limits(name)), server, port, tmp) as proc:
        warm(port)
        time.sleep(1.0)
        idle_pss, idle_kernel = pss_total(proc), kernel_kib()
        start = time.monotonic() + 0.5
        ramp = max(1.0, clients / CONNECTS_PER_S)
        measure = start + ramp + args.warmup
        plan = Plan(clients, start, ramp, measure, measure + args.duration)
        collect = start_idle_clients(port, plan)
        sleep_until(measure)
        cpu_before, began = server_cpu(proc), time.monotonic()
        probes, pss, kernel = [], 0, (0, 0)
        for k in range(args.probes):
            sleep_until(measure + args.duration * (k + 1) / (args.probes + 1))
            probes.append(probe_ms(port))
            if k == args.probes // 2:
                pss, kernel = pss_total(proc), kernel_kib()
        if not args.probes:
            pss, kernel = pss_total(proc), kernel_kib()
        sleep_until(plan.end)
        cpu = cpu_share(cpu_before, server_cpu(proc), time.monotonic() - began)
        outcome = collect()
        time.sleep(1.0)
        after_pss = pss_total(proc)
        if not proc.alive():
            raise RuntimeError(f"{name} died:\n{proc.log_tail()}")
    answered = outcome.latencies_ms
    return {
        "idle_kib": idle_pss,
        "connected_kib": pss,
        "after_kib": after_pss,
        "per_conn_kib": (pss - idle_pss) / clients,
        "slab_per_conn_kib": (kernel[0] - idle_kernel[0]) / clients,
        "tcp_per_conn_kib": (kernel[1] - idle_kernel[1]) / clients,
        "open": outcome.open_mid,
        "rps": len(answered) / args.duration,
        "p50": percentile(answered, 0.5),
        "p99": percentile(answered, 0.99),
        "waited": sum(1 for wait in outcome.longest_wait_s if wait > 1.0),
        "cpu": cpu,
        "probe_median": statistics.median(probes) if probes else 0.0,
        "probe_max": max(probes, default=0.0),
        "errors": sum(outcome.errors.values()),
        "errors_text": ", ".join(f"{n} {kind}" for kind, n in sorted(outcome.errors.items())),
    }


# ---------------------------------------------------------------- past the fd limit


def past_fd_limit(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, float | str]:
    port = common.free_port()
    server = server_for(name, port, args)
    argv = limited(server, args.fd_limit, args.fd_limit)
    with started(name, argv, server, port, tmp) as proc:
        warm(port)
        workers = workers_of(proc)
        size = proc.log_path.stat().st_size
        start = time.monotonic() + 0.5
        ramp = max(1.0, args.fd_clients / CONNECTS_PER_S)
        measure = start + ramp + args.warmup
        plan = Plan(args.fd_clients, start, ramp, measure, measure + args.duration)
        collect = start_idle_clients(port, plan)
        sleep_until(measure)
        cpu_before, began = server_cpu(proc), time.monotonic()
        sleep_until(plan.end)
        cpu = cpu_share(cpu_before, server_cpu(proc), time.monotonic() - began)
        outcome = collect()
        left = time.monotonic()  # the client processes closed every connection on exit
        while not common.http_ok(port, timeout=1.0) and time.monotonic() - left < 30:
            time.sleep(0.01)
        recovered = time.monotonic() - left
        said = proc.log_path.read_bytes()[size:]
        same = _same_workers(proc, workers)
    answered = len(outcome.latencies_ms)
    return {
        "rps": answered / args.duration,
        "p99": percentile(outcome.latencies_ms, 0.99),
        "waited": sum(1 for wait in outcome.longest_wait_s if wait > 1.0),
        "open": outcome.open_mid,
        "cpu": cpu,
        "cpu_ms_per_request": cpu * 10 * args.duration / max(1, answered),
        "lines": said.count(b"\n"),
        "recovered_ms": recovered * 1000,
        "same": "yes" if same else "no",
        "errors_text": ", ".join(f"{n} {kind}" for kind, n in sorted(outcome.errors.items())),
        "first_line": said.decode(errors="replace").strip().splitlines()[0][:200] if said else "",
    }


def _same_workers(proc: common.Running, workers: list[int]) -> bool:
    """Whether `workers` still serve; if not, the log's last lines go to stderr."""
    if workers_of(proc) == workers:
        return True
    print(f"# {proc.server.name}: workers changed; its log ends:\n{proc.log_tail(8)}",
          file=sys.stderr)  # fmt: skip
    return False


# ---------------------------------------------------------------- accept queue full


def queue_full(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, float | str]:
    port = common.free_port()
    server = server_for(name, port, args, backlog=args.backlog)
    with started(name, limited(server, *unit_limits(name)), server, port, tmp) as proc:
        warm(port)
        workers = workers_of(proc)
        for pid in workers:  # the processes that accept, in all three servers
            os.kill(pid, signal.SIGSTOP)
        began = time.monotonic()
        resumed = began + args.hold

        def resume() -> None:
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

        try:
            results = _connect_all_at_once(port, args.queue_clients, resumed, resume)
        finally:
            resume()
        fresh = probe_ms(port)
        same = _same_workers(proc, workers)
    answered = [r for r in results if r[1] == "200"]
    after = [(r[0] - resumed) * 1000 for r in answered]
    outcomes: dict[str, int] = {}
    for _, what in results:
        outcomes[what] = outcomes.get(what, 0) + 1
    return {
        "answered": len(answered),
        "last_after_resume_ms": max(after, default=0.0),
        "median_after_resume_ms": statistics.median(after) if after else 0.0,
        "outcomes": ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items())),
        "fresh_ms": fresh,
        "same": "yes" if same else "no",
    }


def _connect_all_at_once(
    port: int, clients: int, resume_at: float, resume: Callable[[], None]
) -> list[tuple[float, str]]:
    """`clients` non-blocking connects at once, a request on each; (answered at, outcome).

    `resume()` is called at `resume_at`; the clients are given 20 s more.
    """
    import selectors

    sel = selectors.DefaultSelector()
    results: list[tuple[float, str]] = []
    request = b"GET / HTTP/1.1\r\nHost: queue\r\nConnection: close\r\n\r\n"
    for _ in range(clients):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        sel.register(client, selectors.EVENT_WRITE, [b"", False])
    deadline = resume_at + 20  # SYN retries at 1, 3, 7, 15 s after the first
    resumed = False
    while sel.get_map() and time.monotonic() < deadline:
        if not resumed and time.monotonic() >= resume_at:
            resume()
            resumed = True
        for key, _ in sel.select(0.1):
            sock, state = key.fileobj, key.data
            assert isinstance(sock, socket.socket)
            if not state[1]:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    results.append((time.monotonic(), os.strerror(error)))
                    sel.unregister(sock)
                    sock.close()
                    continue
                sock.send(request)
                state[1] = True
                sel.modify(sock, selectors.EVENT_READ, state)
                continue
            try:
                chunk = sock.recv(4096)
            except OSError as exc:
                results.append((time.monotonic(), exc.strerror or type(exc).__name__))
                sel.unregister(sock)
                sock.close()
                continue
            state[0] += chunk
            if not chunk:
                status = state[0][9:12].decode(errors="replace") or "closed unanswered"
                results.append((time.monotonic(), status))
                sel.unregister(sock)
                sock.close()
    if not resumed:
        resume()
    for key in list(sel.get_map().values()):
        results.append((time.monotonic(), "still waiting at the end"))
        key.fileobj.close()  # type: ignore[union-attr]
    sel.close()
    return results


# ---------------------------------------------------------------- report


# A table's columns: (header, str.format template over one run's fields, see _fields).
_MANY_COLUMNS: Final = (
    ("open mid-run", "{open:,.0f}"),
    ("PSS idle MiB", "{idle_mib:.1f}"),
    ("PSS connected MiB", "{connected_mib:.1f}"),
    ("PSS after MiB", "{after_mib:.1f}"),
    ("PSS per connection KiB", "{per_conn_kib:.1f}"),
    ("kernel KiB per connection, both ends (slab / TCP buffers)",
     "{slab_per_conn_kib:.1f} / {tcp_per_conn_kib:.1f}"),
    ("req/s", "{rps:,.0f}"),
    ("p50 ms", "{p50:,.1f}"),
    ("p99 ms", "{p99:,.0f}"),
    ("clients waiting > 1 s", "{waited:,.0f}"),
    ("server CPU %", "{cpu:.0f}"),
    ("fresh client ms (median / max)", "{probe_median:,.1f} / {probe_max:,.0f}"),
    ("errors", "{shown_errors}"),
)  # fmt: skip
_FD_COLUMNS: Final = (
    ("req/s", "{rps:,.0f}"),
    ("p99 ms", "{p99:,.0f}"),
    ("clients waiting > 1 s", "{waited:,.0f}"),
    ("open mid-run", "{open:,.0f}"),
    ("server CPU %", "{cpu:.0f}"),
    ("CPU ms per answer", "{cpu_ms_per_request:.2f}"),
    ("log lines", "{lines}"),
    ("fresh 200 after they left ms", "{recovered_ms:,.0f}"),
    ("same workers", "{same}"),
    ("client-side events", "{shown_errors}"),
)
_QUEUE_COLUMNS: Final = (
    ("answered", "{answered}"),
    ("outcomes", "{outcomes}"),
    ("answered after SIGCONT ms (median / last)",
     "{median_after_resume_ms:,.0f} / {last_after_resume_ms:,.0f}"),
    ("fresh client ms", "{fresh_ms:,.1f}"),
    ("same workers", "{same}"),
)  # fmt: skip

Run = Mapping[str, float | str]


def _fields(run: Run) -> dict[str, object]:
    """A run's fields, plus each `X_kib` as `X_mib` and `shown_errors` (the errors, or 0)."""
    fields: dict[str, object] = dict(run)
    fields.update({k[:-4] + "_mib": float(v) / 1024 for k, v in run.items() if k.endswith("_kib")})
    fields["shown_errors"] = run.get("errors_text") or 0
    return fields


def _cells(runs: Sequence[Run], columns: Sequence[tuple[str, str]]) -> list[str]:
    """One cell per column, each round's value in it, ` / ` between them."""
    return [" / ".join(form.format_map(_fields(run)) for run in runs) for _, form in columns]


def render_many(results: Mapping[tuple[int, str], Sequence[Run]]) -> str:
    header = ["clients", "server", *(head for head, _ in _MANY_COLUMNS)]
    rows = [
        [f"{clients:,}", name, *_cells(runs, _MANY_COLUMNS)]
        for (clients, name), runs in sorted(results.items())
    ]
    return common.markdown_table(header, rows)


def render_limits(fd: Mapping[str, Sequence[Run]], queue: Mapping[str, Sequence[Run]]) -> str:
    text = ""
    if fd:
        header = ["server", *(head for head, _ in _FD_COLUMNS)]
        rows = [[name, *_cells(runs, _FD_COLUMNS)] for name, runs in fd.items()]
        text += "Past the fd limit:\n\n" + common.markdown_table(header, rows)
        for name, runs in fd.items():
            if runs and runs[0]["first_line"]:
                text += f"\n{name} said first: `{runs[0]['first_line']}`\n"
    if queue:
        header = ["server", *(head for head, _ in _QUEUE_COLUMNS)]
        rows = [[name, *_cells(runs, _QUEUE_COLUMNS)] for name, runs in queue.items()]
        text += "\nAccept queue full:\n\n" + common.markdown_table(header, rows)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="100,1000,10000")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--probes", type=int, default=7)
    parser.add_argument("--only", default=",".join(SERVERS))
    parser.add_argument("--worker-connections", type=int, default=10000)
    parser.add_argument("--limits", default="sockactd", help="servers, or 'none'")
    parser.add_argument("--fd-limit", type=int, default=256)
    parser.add_argument("--fd-clients", type=int, default=1000)
    parser.add_argument("--backlog", type=int, default=8)
    parser.add_argument("--queue-clients", type=int, default=200)
    parser.add_argument("--hold", type=float, default=2.0)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    counts = [int(n) for n in args.clients.split(",") if n]
    names = [n for n in args.only.split(",") if n]
    limit_names = [] if args.limits == "none" else args.limits.split(",")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    need = max([*counts, args.fd_clients, args.queue_clients]) + 200
    if hard < need:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} < {need}: raise it (ulimit -Hn) first")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    many: dict[tuple[int, str], list[dict[str, float]]] = {}
    fd: dict[str, list[dict[str, float | str]]] = {}
    queue: dict[str, list[dict[str, float | str]]] = {}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sockactd-manyconns-") as tmp_name:
        tmp = Path(tmp_name)
        commit = common.pin_sockactd(tmp)
        for round_ in range(args.rounds):
            order = names if round_ % 2 == 0 else names[::-1]
            for clients in counts:
                for name in order:
                    print(f"# round {round_ + 1}: {name}, {clients} clients", file=sys.stderr,
                          flush=True)  # fmt: skip
                    many.setdefault((clients, name), []).append(
                        many_clients(name, clients, args, tmp)
                    )
            for name in limit_names if round_ == 0 else []:  # once: they are not rates
                print(f"# round {round_ + 1}: {name} past the limits", file=sys.stderr, flush=True)
                fd.setdefault(name, []).append(past_fd_limit(name, args, tmp))
                queue.setdefault(name, []).append(queue_full(name, args, tmp))
        summary = common.machine_summary()
    took = time.monotonic() - began
    report = (
        f"{summary}\n\n{common.this_command()} at commit {commit}, {took / 60:.1f} min; "
        f"hard open-file limit {hard} for every server (sockactd soft 1024, raising its own), "
        f"worker-connections {args.worker_connections} (sockactd, gunicorn)\n\n"
        f"{render_many(many)}\n{render_limits(fd, queue)}"
    )
    title = "Many idle keep-alive connections (issue 17)"
    common.publish(report, "many-connections", title, args.write)


if __name__ == "__main__":
    main()
