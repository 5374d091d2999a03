"""How long requests stay in each state, as a histogram every process shares (the
``counters`` table), exported on /metrics as ``podium_request_stage_seconds{stage}``.

Each state change adds the time the request spent in the state it leaves (``stage`` is that
state: ``queued`` is the wait for a worker, ``checking``, ``comparing``,
``awaiting_approval``, ``promoting``...), and a terminal one also the whole decision
(``stage="decision"``: created to terminal). One bucket row (not cumulative: cumulated when
read) and one sum row per observation, in the transaction of the state change."""

from __future__ import annotations

import bisect
from datetime import datetime

from sqlalchemy import Connection

from webhook_server.store import counters

BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 14400.0,
           86400.0)
BUCKET, SUM_MS = "stage_seconds_bucket", "stage_seconds_sum_ms"


def observe(conn: Connection, stage: str, since: datetime | None, now: datetime) -> None:
    if since is None:
        return
    seconds = max((now - since).total_seconds(), 0.0)
    i = bisect.bisect_left(BUCKETS, seconds)
    le = "+Inf" if i == len(BUCKETS) else f"{BUCKETS[i]:g}"
    counters.add(conn, BUCKET, f"{stage}|{le}")
    counters.add(conn, SUM_MS, stage, round(seconds * 1000))


def read(conn: Connection) -> dict[str, tuple[list[tuple[str, int]], float]]:
    """``{stage: ([(le, cumulative count)...], sum of seconds)}`` for /metrics."""
    raw = counters.read(conn, BUCKET)
    sums = counters.read(conn, SUM_MS)
    out = {}
    for stage in sorted({labels.partition("|")[0] for labels in raw}):
        total, buckets = 0, []
        for le in [f"{b:g}" for b in BUCKETS] + ["+Inf"]:
            total += raw.get(f"{stage}|{le}", 0)
            buckets.append((le, total))
        out[stage] = (buckets, sums.get(stage, 0) / 1000)
    return out
