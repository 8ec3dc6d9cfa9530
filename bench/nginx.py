"""Through nginx: uwsgi_pass and proxy_pass to sockactd and uWSGI, proxy_pass to gunicorn.

    .venv/bin/python bench/nginx.py [--duration 10] [--connections 50] [--rounds 3]
                                    [--transport tcp|unix|both] [--nginx-workers N] [--write]

One server at a time, rounds interleaved across servers (each round starts the server
and its nginx afresh), one worker per usable CPU each (common.machine_workers()), app
bench/apps/hello.py, each behind its own
nginx (tests/integration/nginx.py's NginxProcess: own prefix, pid file and logs in a
temporary directory, 127.0.0.1 only) running one worker process per usable CPU
(common.usable_cpus()), so that nginx is not the bottleneck on a bigger machine; the
nginx tables in RESULTS.md written before --nginx-workers existed ran 1 (their text says
so), which `--nginx-workers 1` repeats. wrk talks keep-alive to nginx;
nginx opens a new upstream connection per request for uwsgi_pass (the protocol has
no keep-alive) and keeps up to KEEPALIVE (64) idle ones for proxy_pass, to sockactd's
and uWSGI's HTTP/1.1 sockets and to gunicorn. Reports requests/s and p99, each
relative to uWSGI behind uwsgi_pass.
`--transport` picks how nginx reaches the servers: TCP on 127.0.0.1 (the default)
or a UNIX socket (what a systemd deployment usually has); `both` measures each.
`floor` (bench/floor.py) is a reference point, not a server: the least a pure-Python
uwsgi server can do per request, with no checks at all. No correct pure-Python server
beats it, so it shows how much of a gap to uWSGI is left for Python code to close.
`--write` replaces the `nginx` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import shlex
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from tests.integration.nginx import Mode, NginxProcess

MODULE = "hello:app"
SETUPS = ("sockactd", "uwsgi", "sockactd-http", "uwsgi-http", "gunicorn", "floor")
# Idle upstream connections nginx keeps for proxy_pass: at least the requests in flight
# (wrk's 50), or nginx closes the extra ones after each request (docs/nginx.md).
KEEPALIVE = 64


def upstream_server(name: str, address: str, tmp: Path) -> tuple[common.Server, Mode]:
    """`address`: HOST:PORT or a UNIX socket path."""
    workers = common.machine_workers()
    control = tmp / "control.sock"
    if name == "sockactd":
        return common.sockactd(
            MODULE, uwsgi=address, processes=workers, control=control
        ), Mode.UWSGI
    if name == "uwsgi":
        return common.uwsgi(MODULE, uwsgi_socket=address, processes=workers), Mode.UWSGI
    if name == "sockactd-http":
        return common.sockactd(MODULE, http=address, processes=workers, control=control), Mode.HTTP
    if name == "uwsgi-http":
        return common.uwsgi(MODULE, http11=address, processes=workers), Mode.HTTP
    if name == "floor":  # a reference point, not a server: see bench/floor.py
        floor = str(common.ROOT / "bench" / "floor.py")  # as many workers: machine_workers()
        return common.Server("floor", (common.PYTHON, floor, address)), Mode.UWSGI
    bind = address if ":" in address else f"unix:{address}"
    return common.gunicorn(MODULE, bind=bind, workers=workers), Mode.HTTP


def wait_listening(proc: common.Running, address: str, timeout: float = 20.0) -> None:
    """Poll until the upstream accepts connections (it may not speak HTTP)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.server.name} exited:\n{proc.log_tail()}")
        try:
            if ":" in address:
                host, port = address.rsplit(":", 1)
                socket.create_connection((host, int(port)), timeout=1.0).close()
            else:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.settimeout(1.0)
                    probe.connect(address)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.server.name} never listened on {address}")


def measure_round(
    name: str, transport: str, args: argparse.Namespace, tmp: Path, round_no: int
) -> dict[str, object]:
    """One wrk run through a fresh nginx to a freshly started upstream."""
    if transport == "unix":
        address = str(tmp / f"{name}-upstream-{round_no}.sock")
        upstream = f"unix:{address}"
    else:
        address = upstream = f"127.0.0.1:{common.free_port()}"
    server, mode = upstream_server(name, address, tmp)
    proc = common.Running(server, tmp / f"{name}-{transport}.log")
    try:
        wait_listening(proc, address)
        prefix = tmp / f"nginx-{name}-{transport}-{round_no}"
        nginx = NginxProcess(
            prefix, upstream, mode, keepalive=KEEPALIVE, workers=args.nginx_workers
        )
        with nginx:
            if not common.http_ok(nginx.port):
                raise RuntimeError(f"no 200 through nginx to {name}:\n{nginx.logs()}")
            url = f"http://127.0.0.1:{nginx.port}/"
            common.run_wrk(common.wrk_argv(url, 2, args.connections, args.threads, False), 2)
            time.sleep(1)
            argv = common.wrk_argv(url, args.duration, args.connections, args.threads, False)
            result = common.run_wrk(argv, args.duration)
            location = nginx.render_config().split("location / {", 1)[1].split("}", 1)[0]
        if not proc.alive():
            raise RuntimeError(f"{name} died under load:\n{proc.log_tail()}")
    finally:
        proc.stop()
    return {"name": name, "transport": transport, "mode": mode, "server": server,
            "wrk": argv, "result": result, "location": " ".join(location.split())}  # fmt: skip


def summarize(runs: list[dict[str, object]]) -> dict[str, object]:
    """One row from the rounds of one upstream: the median run, and the min-max spread."""
    results = [run["result"] for run in runs]
    assert all(isinstance(result, common.WrkResult) for result in results)
    typed = [result for result in results if isinstance(result, common.WrkResult)]
    return {**runs[-1], "result": common.median_result(typed), "spread": common.spread(typed)}


def render(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    out = common.report_head(
        f"wrk `-t{args.threads} -c{args.connections} -d{args.duration:g}s --latency` "
        f"(keep-alive) to nginx-light ({_processes(args.nginx_workers)}), "
        f"{args.rounds} runs each, "
        "interleaved across upstreams (a fresh server and nginx per run): req/s median "
        f"(min-max), latencies median, errors summed; {common.machine_workers()} app workers "
        "each, app "
        "`bench/apps/hello.py`.\n"
    )
    table = []
    for row in rows:
        result = row["result"]
        assert isinstance(result, common.WrkResult)
        base = next(
            (
                r["result"]
                for r in rows
                if r["name"] == "uwsgi" and r["transport"] == row["transport"]
            ),
            None,
        )
        ratio = "-"
        if isinstance(base, common.WrkResult) and base.requests_per_s:
            ratio = f"{result.requests_per_s / base.requests_per_s:.2f}"
        mode = row["mode"]
        assert isinstance(mode, Mode)
        via = "uwsgi_pass" if mode is Mode.UWSGI else f"proxy_pass (keepalive {KEEPALIVE})"
        table.append(
            [
                row["name"],
                via,
                row["transport"],
                row["spread"],
                f"{result.p50_ms:.2f}",
                f"{result.p99_ms:.2f}",
                result.errors_text(),
                ratio,
            ]
        )
    header = ["upstream", "nginx", "to upstream", "req/s", "p50 ms", "p99 ms", "errors", "x uWSGI"]
    out.append(common.markdown_table(header, table))
    commands = []
    for row in rows:
        server = row["server"]
        assert isinstance(server, common.Server)
        commands.append(
            f"- {row['name']} ({row['transport']}): `{common.shown_argv(server.argv)}`; "
            f"nginx `location /`: `{row['location']}`"
        )
    wrk = rows[0]["wrk"]
    assert isinstance(wrk, list)
    commands.append(f"- wrk: `{shlex.join(wrk)}`")
    return "\n".join(out + common.commands_section(commands))


def _processes(count: int) -> str:
    return f"{count} worker process" + ("" if count == 1 else "es")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=common.wrk_threads(), help="wrk's")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per upstream")
    parser.add_argument("--only", default=",".join(SETUPS))
    parser.add_argument("--transport", choices=("tcp", "unix", "both"), default="tcp")
    parser.add_argument(
        "--nginx-workers", type=int, default=common.usable_cpus(), help="nginx's worker_processes"
    )
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    names = args.only.split(",")
    transports = ("tcp", "unix") if args.transport == "both" else (args.transport,)
    runs: dict[tuple[str, str], list[dict[str, object]]] = {
        (name, transport): [] for transport in transports for name in names
    }
    with tempfile.TemporaryDirectory(prefix="sockactd-nginx-") as tmp_name:
        common.pin_sockactd(Path(tmp_name))
        # Rounds are interleaved (sockactd, uWSGI, gunicorn, then again): this VM's speed
        # drifts by 10-20% over minutes, and back-to-back rounds of one server would
        # charge that drift to whichever server happened to run then.
        for round_no in range(args.rounds):
            for name, transport in runs:
                print(f"# {name} behind nginx ({transport}), round {round_no + 1}/"
                      f"{args.rounds}", file=sys.stderr, flush=True)  # fmt: skip
                runs[name, transport].append(
                    measure_round(name, transport, args, Path(tmp_name), round_no)
                )
    rows = [summarize(done) for done in runs.values()]
    report = render(rows, args)
    print(report)
    if args.write:
        common.write_section("nginx", "## Through nginx\n\n" + report)


if __name__ == "__main__":
    main()
