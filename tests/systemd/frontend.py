"""nginx in front of a package sandbox's sockactd, run by the sandbox's own systemd.

`start_nginx(host, "shop")` writes an nginx configuration under the sandbox root and a
runtime unit (/run/systemd/system/test-nginx.service, gone with the sandbox), starts it,
and returns the TCP port it listens on at host.address. nginx runs as Debian runs it:
master as root, workers as www-data -- so the uwsgi socket's owner, group and mode
(units/sockactd@.socket) are what decides whether it gets through.
"""

from __future__ import annotations

from typing import Final

from tests.integration.nginx import render_uwsgi_params
from tests.support import port_open, wait_until
from tests.systemd.sandbox import INNER, Sandbox

__all__ = ["NGINX_UNIT", "start_nginx"]

NGINX_UNIT: Final = "test-nginx.service"
_RUN: Final = "/run/test-nginx"

_CONF: Final = """\
user www-data;
daemon off;
master_process on;
worker_processes 1;
pid {run}/nginx.pid;
error_log stderr info;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    uwsgi_temp_path {run}/uwsgi;
    fastcgi_temp_path {run}/fastcgi;
    scgi_temp_path {run}/scgi;
    server {{
        listen {address}:{port};
        location / {{
            include {conf_dir}/uwsgi_params;
            uwsgi_pass unix:/run/sockactd/{instance}.sock;
            uwsgi_read_timeout 60s;
        }}
    }}
}}
"""

_UNIT: Final = """\
[Unit]
Description=nginx in front of sockactd@{instance} (test)
[Service]
ExecStart=/usr/sbin/nginx -c {conf_dir}/nginx.conf
RuntimeDirectory=test-nginx
"""


def start_nginx(host: Sandbox, instance: str) -> int:
    """Start nginx (uwsgi_pass to /run/sockactd/INSTANCE.sock); return its port."""
    conf_dir = host.root / "nginx"
    conf_dir.mkdir(mode=0o755, exist_ok=True)
    inner_dir = f"{INNER}/nginx"
    (conf_dir / "uwsgi_params").write_text(render_uwsgi_params())
    (conf_dir / "nginx.conf").write_text(
        _CONF.format(run=_RUN, address=host.address, port=host.port, conf_dir=inner_dir,
                     instance=instance)
    )  # fmt: skip
    for path in conf_dir.iterdir():
        path.chmod(0o644)
    host.write_file(f"/run/systemd/system/{NGINX_UNIT}",
                    _UNIT.format(instance=instance, conf_dir=inner_dir))  # fmt: skip
    host.daemon_reload()
    host.systemctl("start", NGINX_UNIT)
    wait_until(
        lambda: port_open(host.port), 10, f"nginx on port {host.port}: {host.log(NGINX_UNIT)}"
    )
    return host.port
