"""A real Prometheus (Debian's `prometheus`, started here on loopback with its own config and
data directory) scrapes sockactd every second through a load and a chain reload; what it
stored is checked, through its HTTP API, against what the load generator counted."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.integration.server import Load, running
from tests.support import free_port, require, wait_until

APP = "tests.apps.site_app:app"


class Prometheus:
    def __init__(self, tmp: Path, target: int) -> None:
        binary = shutil.which("prometheus")
        require(binary is not None, "needs Debian's prometheus package")
        assert binary is not None
        self.port = free_port()
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: sockactd\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        )
        self.log = tmp / "prometheus.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        wait_until(self._ready, 30, "prometheus ready")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def query(self, expr: str, at: float | None = None) -> float | None:
        params = {"query": expr, **({"time": f"{at:.3f}"} if at else {})}
        url = f"http://127.0.0.1:{self.port}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            data = json.load(response)
        assert data["status"] == "success", data
        result = data["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def test_prometheus_sees_the_requests_and_the_reload(tmp_path: Path) -> None:
    port, metrics = free_port(), free_port()
    args = ["--http-socket", f"127.0.0.1:{port}", "--metrics-socket", f"127.0.0.1:{metrics}",
            "--lazy-apps", APP]  # fmt: skip
    with running(tmp_path, *args) as srv:
        prometheus = Prometheus(tmp_path, metrics)
        try:
            wait_until(lambda: prometheus.query("up") == 1.0, 20, "a first scrape")
            began = time.time()
            with Load(port, threads=2, limit=60) as load:
                load.wait_requests(200)
                assert srv.ctl("reload", "--mode", "chain", "--wait").returncode == 0
                load.wait_requests(200)  # more load after the reload, then a scrape of it:
                reloads = 'sockactd_reloads_total{mode="chain",outcome="done"}'
                wait_until(lambda: prometheus.query(reloads) == 1.0, 20, "a scrape after reload")
            ended = time.time()
            assert load.failures == {}
            total = load.total()
            wait_until(lambda: prometheus.query("sum(sockactd_requests_total)") == total,
                       15, f"Prometheus to store {total} requests")  # fmt: skip
            # rate() over a window that holds the whole load, times the window: the requests
            # Prometheus saw in it (its edge extrapolation adds a little: hence the tolerance)
            window = int(ended - began) + 4
            rate = prometheus.query(f"sum(rate(sockactd_requests_total[{window}s]))", ended + 2)
            assert rate is not None
            assert abs(rate * window - total) / total < 0.25, (rate, window, total)
            assert prometheus.query(reloads) == 1.0
        finally:
            prometheus.stop()
