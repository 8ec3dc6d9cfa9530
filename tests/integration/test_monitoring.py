"""The metrics and stats sockets of a real server, read as an operator's tools read them.

Counts against what a load generator counted, across worker recycling and reloads;
bad input on both sockets while a reload runs; the uWSGI stats JSON's shape.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.integration.server import Load, NotifyListener, Server, http_get, running
from tests.support import child_environ, free_port, port_open, require, sockactd_argv, wait_until

APP = "tests.apps.site_app:app"


def scrape(port: int, path: str = "/metrics", method: str = "GET") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def samples(text: str, name: str) -> dict[str, float]:
    """{label set: value} of one metric in the text format."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(\{{[^}}]*\}})? (\S+)", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def raw_stats(path: Path) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    result: dict[str, object] = json.loads(data)
    return result


def unix_listening(path: Path) -> bool:
    """Whether a socket bound at `path` is listening yet (the file exists from bind() on)."""
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        # Flags 00010000: __SO_ACCEPTCON, set by listen()
        if len(fields) == 8 and fields[7] == str(path) and int(fields[3], 16) & 0x10000:
            return True
    return False


def monitored(tmp: Path, *args: str) -> tuple[list[str], int, Path]:
    port, metrics = free_port(), free_port()
    stats = tmp / "stats.sock"
    argv = ["--http-socket", f"127.0.0.1:{port}", "--metrics-socket", f"127.0.0.1:{metrics}",
            "--stats", str(stats), "--lazy-apps", *args, APP]  # fmt: skip
    return argv, metrics, stats


def requests_total(text: str) -> float:
    return sum(samples(text, "sockactd_requests_total").values())


def test_counts_match_the_load_across_recycling_and_both_reload_kinds(tmp_path: Path) -> None:
    argv, metrics, stats = monitored(tmp_path, "--max-requests", "50")
    with running(tmp_path, *argv) as srv:
        port = int(argv[1].rsplit(":", 1)[1])
        with Load(port, threads=3, limit=60) as load:
            load.wait_requests(300)
            assert srv.ctl("reload", "--mode", "chain", "--wait").returncode == 0
            load.wait_requests(100)
            assert srv.ctl("reload", "--mode", "standard", "--wait").returncode == 0
            load.wait_requests(100)
        assert load.failures == {}
        # the workers publish their counts at least once a second
        wait_until(lambda: requests_total(scrape(metrics)[1]) == load.total(), 5, "all counted")
        text = scrape(metrics)[1]
        assert samples(text, "sockactd_requests_total")['{protocol="http",status="2xx"}'] == load.ok
        histogram = samples(text, "sockactd_request_duration_seconds_count")
        assert histogram[""] == load.total()
        reloads = samples(text, "sockactd_reloads_total")
        assert reloads['{mode="chain",outcome="done"}'] == 1
        assert reloads['{mode="standard",outcome="done"}'] == 1
        exits = samples(text, "sockactd_worker_exits_total")
        assert exits['{reason="max-requests"}'] >= 2  # each first worker served 50 at least
        assert exits['{reason="reload"}'] >= 4  # two reloads of two workers
        assert exits['{reason="crash"}'] == 0
        assert samples(text, "sockactd_generation")[""] == 3
        settled = {'{state="booting"}': 0, '{state="serving"}': 2, '{state="draining"}': 0}
        wait_until(lambda: samples(scrape(metrics)[1], "sockactd_workers") == settled,
                   20, "two serving workers, none booting or draining")  # fmt: skip
        assert samples(text, "sockactd_last_reload_duration_seconds")[""] > 0
        assert abs(samples(text, "sockactd_last_successful_reload_timestamp_seconds")[""]
                   - time.time()) < 60  # fmt: skip
        stats_json = raw_stats(stats)
        workers = stats_json["workers"]
        assert isinstance(workers, list)
        assert sorted(w["pid"] for w in workers) == sorted(srv.worker_pids())


def test_metrics_page_basics(tmp_path: Path) -> None:
    argv, metrics, _ = monitored(tmp_path)
    with running(tmp_path, *argv):
        status, text = scrape(metrics)
        assert status == 200
        for name in (
            "sockactd_build_info",
            "sockactd_start_time_seconds",
            "process_start_time_seconds",
            "sockactd_listen_queue_limit",
            "sockactd_worker_resident_memory_bytes",
            "sockactd_requests_in_flight",
        ):
            assert samples(text, name), name  # fmt: skip
        assert scrape(metrics, "/")[0] == 404
        assert scrape(metrics, "/metrics", "POST")[0] == 405
        status, body = scrape(metrics, "/metrics", "HEAD")
        assert (status, body) == (200, "")


def _flood(address: tuple[str, int] | str, count: int) -> list[socket.socket]:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    clients = []
    for n in range(count):
        sock = socket.socket(family)
        sock.setblocking(False)
        try:
            sock.connect(address)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            sock.close()
            continue
        try:  # a third garbage, a third half requests, a third nothing at all
            sock.send([b"\x16\x03\x01garbage\r\n\r\n", b"GET /metr", b""][n % 3])
        except OSError:
            pass
        clients.append(sock)
    return clients


def _master_rss(srv: Server) -> int:
    fields = Path(f"/proc/{srv.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", fields).group(1)) * 1024  # type: ignore[union-attr]


def test_a_flood_on_both_sockets_does_not_stop_a_reload(tmp_path: Path) -> None:
    argv, metrics, stats = monitored(tmp_path)
    with running(tmp_path, *argv) as srv:
        port = int(argv[1].rsplit(":", 1)[1])
        rss_before = _master_rss(srv)
        clients: list[socket.socket] = []
        try:
            with Load(port, threads=2, limit=60) as load:
                load.wait_requests(20)
                began = time.monotonic()
                assert srv.ctl("reload", "--mode", "chain", "--wait").returncode == 0
                quiet = time.monotonic() - began  # the same reload under the same load, no flood
                clients += _flood(("127.0.0.1", metrics), 1000) + _flood(str(stats), 1000)
                began = time.monotonic()
                result = srv.ctl("reload", "--mode", "chain", "--wait")
                took = time.monotonic() - began
                clients += _flood(("127.0.0.1", metrics), 200)
                load.wait_requests(20)
            assert result.returncode == 0, result.stdout + result.stderr
            assert load.failures == {}
            assert scrape(metrics)[0] == 200  # still answering, flood or not
            assert raw_stats(stats)["workers"]
            grown = _master_rss(srv) - rss_before
        finally:
            for sock in clients:
                sock.close()
    print(f"chain reload: {quiet:.2f} s; under a 2,200-connection flood: {took:.2f} s; "
          f"master RSS +{grown} B")  # fmt: skip
    assert grown < 16 * 1024 * 1024
    assert "chain reload done" in srv.log()


def test_stats_over_http_with_stats_http(tmp_path: Path) -> None:
    port, stats = free_port(), free_port()
    with running(tmp_path, "--http-socket", f"127.0.0.1:{port}", "--stats",
                 f"127.0.0.1:{stats}", "--stats-http", APP):  # fmt: skip
        assert http_get(port)[0] == 200

        def served() -> int:  # the board counts a request just after its answer went out
            return sum(w["requests"] for w in json.loads(scrape(stats, "/")[1])["workers"])

        wait_until(lambda: served() == 1, 5, "the request counted")
        status, body = scrape(stats, "/")
        data = json.loads(body)
        assert status == 200
        wait_until(lambda: sum(w["tx"] for w in json.loads(scrape(stats, "/")[1])["workers"]),
                   5, "the body bytes, published within a tick")  # fmt: skip
        assert data["sockets"][0]["max_queue"] > 0
        assert scrape(stats, "/nope")[0] == 404


def test_a_socket_named_metrics_from_systemd_is_the_masters_not_the_apps(tmp_path: Path) -> None:
    tool = shutil.which("systemd-socket-activate")
    require(tool is not None, "needs systemd-socket-activate (Debian package systemd)")
    assert tool is not None
    app_port, metrics = free_port(), free_port()
    notify = NotifyListener(tmp_path / "notify.sock")
    argv = [tool, "-l", f"127.0.0.1:{app_port}", "-l", f"127.0.0.1:{metrics}",
            "--fdname=http:metrics", "-E", f"NOTIFY_SOCKET={notify.path}",
            *sockactd_argv("--control-socket", str(tmp_path / "ctl.sock"), APP)]  # fmt: skip
    with open(tmp_path / "log", "wb") as log:
        process = subprocess.Popen(argv, env=child_environ(), stdout=log, stderr=log)
    try:
        wait_until(lambda: port_open(metrics), 10, "systemd-socket-activate listening")
        for _ in range(20):  # the first connection starts sockactd; each answer is the master's
            status, text = scrape(metrics)
            assert status == 200
        assert samples(text, "sockactd_build_info")
        assert scrape(metrics, "/")[0] == 404  # the app would have answered 200 on any path
        assert http_get(app_port)[0] == 200
        queues = samples(scrape(metrics)[1], "sockactd_listen_queue_limit")
        assert list(queues) == [f'{{listener="fd 3 (http) 127.0.0.1:{app_port}",protocol="http"}}']
    finally:
        process.terminate()
        process.wait(15)
        notify.close()


def test_a_monitoring_socket_file_from_systemd_outlives_the_server(tmp_path: Path) -> None:
    """The socket unit owns its file: sockactd stopping must not unlink it (it used to)."""
    tool = shutil.which("systemd-socket-activate")
    require(tool is not None, "needs systemd-socket-activate (Debian package systemd)")
    assert tool is not None
    stats = tmp_path / "stats.sock"
    notify = NotifyListener(tmp_path / "notify.sock")
    argv = [tool, "-l", f"127.0.0.1:{free_port()}", "-l", str(stats), "--fdname=http:stats",
            "-E", f"NOTIFY_SOCKET={notify.path}",
            *sockactd_argv("--control-socket", str(tmp_path / "ctl.sock"), APP)]  # fmt: skip
    with open(tmp_path / "log", "wb") as log:
        process = subprocess.Popen(argv, env=child_environ(), stdout=log, stderr=log)
    try:
        wait_until(lambda: unix_listening(stats), 10, "systemd-socket-activate listening")
        assert "workers" in raw_stats(stats)  # this connection starts sockactd
        notify.wait_for("READY", "1", 20)
    finally:
        process.terminate()  # sockactd by now: systemd-socket-activate execs it
        process.wait(15)
        notify.close()
    assert process.returncode == 0, (tmp_path / "log").read_text()
    assert stats.exists()
