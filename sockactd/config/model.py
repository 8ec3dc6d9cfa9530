"""The validated configuration every other module reads.

One typed field per entry of settings.SETTINGS, in the table's order, plus
`config_file`; a unit test keeps the annotations and the table in step. The
defaults are the table's. Built only by load.py (and by tests); frozen, so a
running generation cannot change it: derive a changed copy with replace().
"""

from __future__ import annotations

from sockactd.config.settings import SETTINGS, by_name
from sockactd.modes import ReloadMode  # at run time: the field's annotation names it

__all__ = ["Config"]

# Field -> default. Lists are copied per instance in Config.__init__, never shared.
_DEFAULTS: dict[str, object] = {setting.attr: setting.default for setting in SETTINGS}
_DEFAULTS["config_file"] = None


class Config:
    __slots__ = tuple(_DEFAULTS)

    module: str | None
    wsgi_file: str | None
    callable: str
    pythonpath: list[str]
    chdir: str | None
    env: list[str]
    lazy_apps: bool
    home: str | None
    http_socket: list[str]
    socket: list[str]
    listen: int
    chmod_socket: str | None
    processes: int
    threads: int
    harakiri: float
    max_requests: int
    boot_attempts: int
    ready_timeout: float
    reload_mercy: float
    worker_reload_mercy: float
    max_requests_delta: int
    max_worker_lifetime: float
    max_worker_lifetime_delta: float
    reload_on_rss: int
    evil_reload_on_rss: int
    limit_post: int
    buffer_size: int
    header_timeout: float
    socket_timeout: float
    body_timeout: float
    body_min_rate: int
    keepalive_timeout: float
    keepalive_requests: int
    worker_connections: int
    trusted_proxies: list[str]
    reload_mode: ReloadMode
    drain_first: bool
    touch_reload: list[str]
    touch_workers_reload: list[str]
    touch_chain_reload: list[str]
    py_autoreload: float
    reload: bool
    reload_extra_file: list[str]
    reload_ignore: list[str]
    reload_engine: str
    autoreload_under_systemd: bool
    control_socket: str | None
    log_level: str
    access_log: bool
    metrics_socket: str | None
    stats: str | None
    stats_http: bool
    # Where this config came from, for messages and for a standard reload (not a setting).
    config_file: str | None

    def __init__(self, **values: object) -> None:
        """Fields by keyword; a field not given takes the settings table's default."""
        unknown = values.keys() - _DEFAULTS.keys()
        if unknown:
            raise TypeError(f"Config has no field {', '.join(map(repr, sorted(unknown)))}")
        for name, default in _DEFAULTS.items():
            if name in values:
                value = values[name]
            else:
                value = list(default) if isinstance(default, list) else default
            object.__setattr__(self, name, value)

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """Every field name, in settings.SETTINGS order, then `config_file`."""
        return cls.__slots__

    def replace(self, **changes: object) -> Config:
        """A copy with some fields changed (this one stays as it is)."""
        return Config(**{**self._values(), **changes})

    @property
    def app_target(self) -> str:
        """Human-readable name of the WSGI app, for logs and STATUS=."""
        if self.wsgi_file:
            return f"{self.wsgi_file}:{self.callable}"
        return self.module or "<none>"

    @property
    def autoreload_seconds(self) -> float:
        """The py-autoreload interval, gunicorn's `reload` counting as 1 s; 0.0 when off."""
        return self.py_autoreload or (1.0 if self.reload else 0.0)

    def trigger_files(self, mode: ReloadMode) -> list[str]:
        """The files whose change asks for a `mode` reload (its `trigger` setting; [] if none)."""
        if mode.trigger is None:
            return []
        files: list[str] = getattr(self, by_name(mode.trigger).attr)
        return files

    def _values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Config is frozen: cannot set {name!r} (use replace())")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Config is frozen: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not Config:
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._values().items())
        return f"Config({fields})"
