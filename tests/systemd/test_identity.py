"""Who may do what on an installed host: one identity per instance, the uwsgi socket for the
front end only, reloads for a deploy group (issue 14, #2, #3, #4), in a package sandbox."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.support import wait_until
from tests.systemd.clients import get
from tests.systemd.frontend import start_nginx
from tests.systemd.sandbox import Sandbox, toml_text
from tests.systemd.site import deploy_code, deploy_site, get_unix, speak_http

PROBE = '''"""Tries what one app should not be able to do to another."""
import json
import os
import socket
from urllib.parse import parse_qs


def app(environ, start_response):
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    out = {"uid": os.getuid()}
    if "sock" in query:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(query["sock"])
            out["connect"] = "ok"
        except OSError as exc:
            out["connect"] = exc.strerror
        finally:
            probe.close()
    if "pid" in query:
        try:
            os.kill(int(query["pid"]), 0)
            out["kill"] = "ok"
        except OSError as exc:
            out["kill"] = exc.strerror
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''


def serve_probe(host: Sandbox, instance: str) -> int:
    """Instance running the probe app; returns its MainPID."""
    host.write_file(f"/srv/{instance}/probe.py", PROBE)
    settings = {"module": "probe:app", "pythonpath": [f"/srv/{instance}"], "processes": 1}
    host.write_file(f"/etc/sockactd/{instance}.toml", toml_text(settings))
    host.systemctl("enable", "--now", f"sockactd@{instance}.socket")
    get_unix(host, instance)
    host.wait_for(f"sockactd@{instance}.service", "ActiveState", "active")
    return int(host.prop(f"sockactd@{instance}.service", "MainPID"))


def test_one_instance_cannot_use_anothers_control_socket_or_signal_it(
    host: Sandbox, deb: Path
) -> None:
    host.apt("install", "-y", str(deb))
    speak_http(host)
    pids = {name: serve_probe(host, name) for name in ("alpha", "beta")}
    assert host.prop("sockactd@alpha.service", "User") == "sockactd-alpha"
    for me, other in (("alpha", "beta"), ("beta", "alpha")):
        own = get_unix(host, me, f"/?sock=/run/sockactd/{me}/control.sock&pid={pids[me]}")
        assert (own["connect"], own["kill"]) == ("ok", "ok")  # the probe can succeed
        seen = get_unix(host, me, f"/?sock=/run/sockactd/{other}/control.sock&pid={pids[other]}")
        assert seen["uid"] == own["uid"]
        assert (seen["connect"], seen["kill"]) == ("Permission denied", "Operation not permitted")
    assert get_unix(host, "alpha")["uid"] != get_unix(host, "beta")["uid"]


def test_an_instance_name_too_long_for_its_user_is_refused_clearly(
    host: Sandbox, deb: Path
) -> None:
    host.apt("install", "-y", str(deb))
    name = "shop-with-a-long-name23"
    assert len(name) == 23
    host.write_file(f"/etc/sockactd/{name}.toml", 'module = "sockactd.demo:app"\n')
    enable = host.systemctl("enable", "--now", f"sockactd@{name}.socket", check=False)
    assert enable.returncode != 0
    assert "is 23 characters long, at most 22 are possible" in host.journal(
        f"sockactd@{name}.socket"
    )


def test_only_the_front_end_group_may_use_the_uwsgi_socket(host: Sandbox, deb: Path) -> None:
    deploy_site(host, deb, "shop")
    sock = host.inside("/run/sockactd/shop.sock")
    st = sock.stat()
    www_data = host.run("getent", "group", "www-data").stdout.split(":")[2]
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o660, 0, int(www_data))
    connect = "import socket; socket.socket(socket.AF_UNIX).connect('/run/sockactd/shop.sock')"
    stranger = host.run("runuser", "-u", "nobody", "--", "python3", "-c", connect, check=False)
    assert stranger.returncode != 0 and "Permission denied" in stranger.stderr
    port = start_nginx(host, "shop")  # workers run as www-data
    assert get(port, host=host.address, timeout=30).status == 200
    host.apt("remove", "-y", "sockactd")
    assert not sock.exists()  # RemoveOnStop=yes


TRIGGERS = (("standard", "reload"), ("workers", "workers-reload"), ("chain", "chain-reload"))


def add_deployer(host: Sandbox) -> None:
    host.run("useradd", "--no-create-home", "--groups", "sockactd-deploy", "deployer")


def touch_as(host: Sandbox, user: str, path: str) -> None:
    host.run("runuser", "-u", user, "--", "touch", path)


def wait_for_version(host: Sandbox, version: int) -> None:
    wait_until(
        lambda: get_unix(host, "shop")["version"] == version,
        60,
        f"version {version} to serve; journal:\n{host.journal('sockactd@shop.service')}",
        interval=0.1,
    )


@pytest.mark.parametrize("route", ["path-units", "inotify"])
def test_a_deploy_group_member_triggers_every_reload_mode(
    host: Sandbox, deb: Path, route: str
) -> None:
    host.apt("install", "-y", str(deb))
    speak_http(host)
    watch = {}
    if route == "inotify":  # the master's own watch, no .path unit
        watch = {f"touch-{t}": [f"/var/lib/sockactd/shop/{t}"] for _, t in TRIGGERS}
    deploy_site(host, deb, "shop", **watch)
    add_deployer(host)
    directory = host.inside("/var/lib/sockactd/shop").stat()
    assert stat.S_IMODE(directory.st_mode) == 0o2775
    assert get_unix(host, "shop")["version"] == 1
    # the master watches the files once it is up (a touch while it starts goes unseen by
    # its own watch; the .path units' oneshots wait for the start instead)
    host.wait_for("sockactd@shop.service", "ActiveState", "active")
    for version, (mode, trigger) in enumerate(TRIGGERS, start=2):
        if route == "path-units":
            host.systemctl("enable", "--now", f"sockactd-{trigger}@shop.path")
        deploy_code(host, "shop", version=version)
        touch_as(host, "deployer", f"/var/lib/sockactd/shop/{trigger}")
        wait_for_version(host, version)
        assert f"{mode} reload" in host.journal("sockactd@shop.service")
        if route == "path-units":
            host.systemctl("disable", "--now", f"sockactd-{trigger}@shop.path")
    refused = host.run("runuser", "-u", "nobody", "--", "touch",
                       "/var/lib/sockactd/shop/reload", check=False)  # fmt: skip
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
