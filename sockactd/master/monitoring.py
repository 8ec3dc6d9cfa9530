"""Which page each monitoring socket serves; set up once by the master.

`metrics` serves metrics.py's page (prometheus_client is imported here, only
when that socket exists); `stats` serves stats.py's uWSGI JSON, in the dialect
endpoints.py chose (raw as uWSGI's stats server writes it, or HTTP with `stats-http`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sockactd.log import get_logger
from sockactd.master.endpoints import METRICS, MonitorSocket
from sockactd.master.loop import Loop
from sockactd.master.monitor import MonitorServer, Page
from sockactd.master.snapshot import Sources

__all__ = ["open_monitors"]

log = get_logger(__name__)


def open_monitors(
    sockets: Sequence[MonitorSocket],
    sources: Sources,
    loop: Loop,
) -> list[MonitorServer]:
    servers = []
    for endpoint in sockets:
        page: Page
        if endpoint.name == METRICS:
            from sockactd.master.metrics import MetricsPage

            page = MetricsPage(sources)
        else:
            from sockactd.master.stats import StatsPage

            page = StatsPage(sources)
        servers.append(MonitorServer(endpoint, page, loop, sources.monotonic))
        log.info("%s socket at %s%s", endpoint.name, endpoint.address,
                 " (HTTP)" if endpoint.http else "")  # fmt: skip
    return servers
