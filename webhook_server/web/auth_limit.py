"""Guessing a token, limited: failed API tokens, failed web-page logins and failed
``/metrics`` tokens are counted per client address and in total; past either limit every
attempt (right or wrong: a 429 must not tell which) is answered 429 with ``Retry-After``
until the window moves on. A right token never counts, so a busy CI job is never throttled
by its own traffic.

The counting is ``limits`` (the engine of flask-limiter), moving windows, in
``PODIUM_RATELIMIT_STORAGE_URI``: ``memory://`` (default) counts per process; with several
processes or nodes point them all at one ``redis://`` so they share the count. A storage
that cannot be reached does not lock everyone out: the attempt is let through to the token
check (tokens are >= 128 bits) and a warning is logged.
"""

from __future__ import annotations

import logging
import math
import time

from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from webhook_server.core.settings import Settings

log = logging.getLogger(__name__)
NAMESPACE = "podium-auth-failures"
MESSAGE = ("too many failed authentication attempts{who}: retry in {wait} s (only failed "
           "attempts count; see PODIUM_AUTH_LIMIT_PER_ADDRESS / PODIUM_AUTH_LIMIT_TOTAL)")


class AuthLimiter:
    """One per app (``app.extensions["podium.auth_limit"]``)."""

    def __init__(self, settings: Settings, clock=time.time) -> None:
        storage = storage_from_string(settings.ratelimit_storage_uri or "memory://")
        self._window = MovingWindowRateLimiter(storage)
        self._per_address = parse_many(settings.auth_limit_per_address)
        self._total = parse_many(settings.auth_limit_total)
        self._clock = clock

    def _counters(self, address: str | None):
        who = ("address", address or "unknown")
        return ([(item, who) for item in self._per_address]
                + [(item, ("total",)) for item in self._total])

    def retry_after(self, address: str | None) -> tuple[int, bool] | None:
        """(seconds to wait, whether it is this address's own limit) while ``address`` may
        not try, else None."""
        worst: tuple[int, bool] | None = None
        try:
            for item, ids in self._counters(address):
                if self._window.test(item, NAMESPACE, *ids):
                    continue
                reset = self._window.get_window_stats(item, NAMESPACE, *ids).reset_time
                wait = max(1, math.ceil(reset - self._clock()))
                if worst is None or wait > worst[0]:
                    worst = (wait, ids[0] == "address")
        except Exception as exc:  # the storage is unreachable: fail open, say so
            log.warning("auth limiter: cannot read the counts (%s); not limiting",
                        type(exc).__name__)
            return None
        return worst

    def failed(self, address: str | None) -> None:
        """Count one failed attempt from ``address``."""
        try:
            for item, ids in self._counters(address):
                self._window.hit(item, NAMESPACE, *ids)
        except Exception as exc:
            log.warning("auth limiter: cannot count a failure (%s)", type(exc).__name__)


def message(wait_own: tuple[int, bool]) -> str:
    wait, own = wait_own
    return MESSAGE.format(who=" from this address" if own else " (all addresses)", wait=wait)
