"""The validated configuration every other module reads.

One typed field per entry of settings.SETTINGS (a unit test keeps the two in
step). Built only by load.py; frozen, so a running generation cannot change it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Config"]


@dataclass(frozen=True, slots=True)
class Config:
    module: str | None = None
    wsgi_file: str | None = None
    callable: str = "application"
    pythonpath: list[str] = field(default_factory=list)
    chdir: str | None = None
    env: list[str] = field(default_factory=list)
    lazy_apps: bool = False
    http_socket: list[str] = field(default_factory=list)
    socket: list[str] = field(default_factory=list)
    listen: int = 0
    chmod_socket: str | None = None
    processes: int = 2
    threads: int = 1
    harakiri: float = 0.0
    max_requests: int = 0
    boot_attempts: int = 3
    ready_timeout: float = 60.0
    reload_mercy: float = 30.0
    worker_reload_mercy: float = 60.0
    limit_post: int = 0
    buffer_size: int = 16384
    header_timeout: float = 10.0
    socket_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    keepalive_requests: int = 1000
    trusted_proxies: list[str] = field(default_factory=list)
    reload_mode: str = "chain"
    drain_first: bool = False
    touch_reload: list[str] = field(default_factory=list)
    touch_workers_reload: list[str] = field(default_factory=list)
    touch_chain_reload: list[str] = field(default_factory=list)
    control_socket: str | None = None
    log_level: str = "info"
    access_log: bool = False
    # Where this config came from, for messages and for a standard reload (not a setting).
    config_file: str | None = None

    @property
    def app_target(self) -> str:
        """Human-readable name of the WSGI app, for logs and STATUS=."""
        if self.wsgi_file:
            return f"{self.wsgi_file}:{self.callable}"
        return self.module or "<none>"
