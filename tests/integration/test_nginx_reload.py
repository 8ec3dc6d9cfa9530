"""Each reload mode under load through a real nginx: not one 502 or 504.

nginx keeps upstream connections alive (proxy_pass) or opens one per request
(uwsgi_pass to a UNIX socket, as the shipped socket unit serves it). Clients
talk to nginx; the site is redeployed and reloaded while they do; nginx's own
access log must show no 5xx and every client answer must be a 200.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.nginx import Mode, nginx_starter, require_nginx
from tests.integration.server import Load, Server, get_json
from tests.integration.test_reload_modes import deploy
from tests.support import ROOT, free_port


@pytest.mark.parametrize("reload_mode", ["standard", "workers", "chain"])
@pytest.mark.parametrize("mode", [Mode.UWSGI, Mode.HTTP], ids=["uwsgi_pass", "proxy_pass"])
def test_reload_through_nginx_has_no_bad_gateway(
    tmp_path: Path, mode: Mode, reload_mode: str
) -> None:
    require_nginx()
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(ROOT / "tests" / "apps" / "site_app.py", site / "site_app.py")
    if mode is Mode.UWSGI:
        sock = tmp_path / "app.sock"
        listen, upstream = ["--socket", str(sock)], f"unix:{sock}"
    else:
        port = free_port()
        listen, upstream = ["--http-socket", f"127.0.0.1:{port}"], f"127.0.0.1:{port}"
    args = [*listen, "--pythonpath", str(site), "--lazy-apps", "--processes", "2", "site_app:app"]
    srv = Server(tmp_path, args).start()
    try:
        with nginx_starter(tmp_path) as start:
            front = start(upstream, mode, read_timeout=30.0)
            with Load(front.port, threads=4, limit=60, keepalive=True) as load:
                load.wait_requests(200)
                deploy(site, version="v2")
                result = srv.ctl("reload", "--mode", reload_mode, "--wait")
                assert result.returncode == 0, result.stderr + srv.log()
                load.wait_requests(200)
            assert load.failures == {}, load.failures
            assert get_json(front.port)["version"] == "v2"
            statuses = [line.split()[0] for line in front.access_lines()]
            assert statuses and set(statuses) == {"200"}, sorted(set(statuses))
            errors = [line for line in front.logs().splitlines() if "[error]" in line]
            if mode is Mode.HTTP:
                # HTTP keep-alive's inherent race (RFC 9112 9.3.1): an idle upstream connection
                # closed by a retiring worker just as nginx reuses it. nginx retries such a
                # request on a new connection (every status above is 200); the worker's stop
                # grace makes it rare. Anything else nginx logs is a failure.
                errors = [line for line in errors if not _retried_keepalive_reset(line)]
            assert errors == [], "\n".join(errors)

    finally:
        srv.stop()


def _retried_keepalive_reset(line: str) -> bool:
    return "(104: Connection reset by peer) while reading response header from upstream" in line
