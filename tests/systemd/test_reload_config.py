"""`systemctl reload` checks and applies the configuration file, in a real systemd."""

from __future__ import annotations

from tests.support import wait_until
from tests.systemd.clients import APP_MODULE, Load, app_settings, app_source, get
from tests.systemd.sandbox import Sandbox, toml_text

SERVICE = "sockactd@demo.service"


def test_reload_after_a_config_typo_fails_and_the_site_keeps_serving(sandbox: Sandbox) -> None:
    sandbox.write_code(APP_MODULE, app_source(version=1))
    sandbox.write_config(app_settings())
    sandbox.systemctl("start", SERVICE)
    main_pid = sandbox.prop(SERVICE, "MainPID")
    good = toml_text(app_settings())
    sandbox.config_path().write_text(good.replace("processes", "procesess"))
    with Load(sandbox.port, threads=2, max_seconds=90) as load:
        wait_until(lambda: load.count() >= 10, 10, "the load to get going")
        result = sandbox.systemctl("reload", SERVICE, check=False)
    assert result.returncode != 0, "systemctl reload accepted a configuration with a typo"
    assert "did you mean 'processes'?" in sandbox.log(SERVICE)
    assert load.failures == [], load.failures[:5]
    assert sandbox.show(SERVICE, "ActiveState", "MainPID") == {
        "ActiveState": "active",
        "MainPID": main_pid,
    }
    assert "did you mean 'processes'?" in sandbox.prop(SERVICE, "StatusText")
    # fixed, and a setting the new workers take: the next reload applies it
    sandbox.config_path().write_text(toml_text(app_settings(**{"access-log": True})))
    result = sandbox.systemctl("reload", SERVICE, check=False)
    assert result.returncode == 0, result.stderr + sandbox.log(SERVICE)
    assert get(sandbox.port, "/after-reload").status == 200
    wait_until(lambda: '"GET /after-reload HTTP/1.1" 200' in sandbox.log(SERVICE), 10, "access log")
