"""When to replace a worker that died: back off broken code, never a crashing request.

Rule 1: a worker that dies before it reports ready (an import that fails, code
        that cannot boot) starts or continues a streak; each early death within
        YOUNG seconds of the previous one doubles the wait before the next
        spawn, from 0.1 s up to MAX_BACKOFF. Respawning broken code faster helps
        nobody.
Rule 2: a worker that was serving when it died is replaced at once: one client
        hitting a route that crashes its worker must not keep the site down.
        The replacement must boot and report ready before a request can kill
        it again, and the number of workers never exceeds the configured one,
        so this cannot fork-bomb; to bound the CPU a crash loop burns on forks
        as well, at most SERVING_RESPAWNS_PER_SECOND replacements per configured
        worker start in any one second -- beyond that, the next waits until
        the oldest death of that second is a second old.
Pure: times in, the earliest next spawn out. health.py does the spawning.
"""

from __future__ import annotations

from collections import deque
from typing import Final

__all__ = ["MAX_BACKOFF", "SERVING_RESPAWNS_PER_SECOND", "YOUNG", "RespawnPolicy"]

YOUNG: Final = 10.0  # boot failures closer together than this continue a streak
MAX_BACKOFF: Final = 5.0
SERVING_RESPAWNS_PER_SECOND: Final = 10  # per configured worker


class RespawnPolicy:
    def __init__(self) -> None:
        self.next_spawn = 0.0  # monotonic time before which no worker is spawned
        self._streak = 0
        self._last_boot_failure: float | None = None
        self._serving_deaths: deque[float] = deque()

    def boot_failed(self, now: float) -> float:
        """A worker died before it reported ready (Rule 1). Returns the back-off chosen."""
        last = self._last_boot_failure
        self._streak = self._streak + 1 if last is not None and now - last < YOUNG else 1
        self._last_boot_failure = now
        delay = 0.0 if self._streak <= 1 else min(0.1 * 2 ** (self._streak - 2), MAX_BACKOFF)
        self.next_spawn = max(self.next_spawn, now + delay)
        return delay

    def serving_died(self, now: float, size: int) -> bool:
        """A serving worker died (Rule 2). True when its replacement has to wait for the cap."""
        deaths = self._serving_deaths
        while deaths and now - deaths[0] >= 1.0:
            deaths.popleft()
        capped = len(deaths) >= SERVING_RESPAWNS_PER_SECOND * max(1, size)
        if capped:
            self.next_spawn = max(self.next_spawn, deaths[0] + 1.0)
        deaths.append(now)
        return capped
