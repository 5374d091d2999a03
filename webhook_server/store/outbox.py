"""The notification outbox: rows written in the caller's transaction, sent later in order.

``emit`` is called inside the transaction of the state change a notification reports, so a
change is never recorded without its notification, nor a notification sent for a change
that rolled back. ``next_batch`` / ``mark_*`` are used by the sender (notify/sender.py).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update

from webhook_server.core import tracing
from webhook_server.store import fastsql, leases
from webhook_server.store.schema import outbox, slack_threads, utcnow

PENDING, SENT, DEAD = "pending", "sent", "dead"


def emit(conn: Connection, *, key: str, kind: str, payload: dict[str, Any],
         request_id: int | None = None, channel: str = "slack") -> None:
    """Queue one notification (idempotent on ``key``) in the caller's transaction."""
    fast = fastsql.for_conn(conn)  # reached from the intake hot path
    fast.send(conn, "insert_outbox", {
        "key": key, "channel": channel, "kind": kind, "request_id": request_id,
        "payload": json.dumps(payload, sort_keys=True, default=str),
        "now": fast.ts(utcnow()), "trace_context": tracing.carrier()})


def exists(conn: Connection, key: str) -> bool:
    return conn.execute(select(outbox.c.id).where(outbox.c.key == key)).first() is not None


def next_batch(conn: Connection, channel: str, limit: int = 50) -> list[dict[str, Any]]:
    """Pending rows of ``channel`` in the order they were written."""
    q = (select(outbox).where(outbox.c.channel == channel, outbox.c.state == PENDING)
         .order_by(outbox.c.id).limit(limit))
    rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        r["payload"] = json.loads(r["payload"])
    return rows


def mark_attempt(conn: Connection, row_id: int) -> None:
    """Recorded (and committed) before a send: a later attempt must look before it posts."""
    conn.execute(update(outbox).where(outbox.c.id == row_id).values(
        attempted_at=utcnow(), attempts=outbox.c.attempts + 1))


def mark_sent(conn: Connection, row_id: int, result: str | None) -> None:
    conn.execute(update(outbox).where(outbox.c.id == row_id).values(
        state=SENT, sent_at=utcnow(), result=result, last_error=None))


def mark_failed(conn: Connection, row_id: int, error: str, retry_in_s: float,
                dead: bool = False, delivered_nothing: bool = False) -> None:
    """``delivered_nothing``: the receiver refused the send, so the next attempt need not
    look for an earlier delivery."""
    values = {"state": DEAD if dead else PENDING, "last_error": error[:2000],
              "run_after": utcnow() + timedelta(seconds=retry_in_s)}
    if delivered_nothing:
        values["attempted_at"] = None
    conn.execute(update(outbox).where(outbox.c.id == row_id).values(**values))


def due(row: dict[str, Any]) -> bool:
    return row["run_after"] <= utcnow()


def counts(conn: Connection) -> dict[tuple[str, str], int]:
    q = select(outbox.c.channel, outbox.c.state, func.count()).group_by(outbox.c.channel,
                                                                       outbox.c.state)
    return {(c, s): n for c, s, n in conn.execute(q)}


def thread(conn: Connection, request_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(slack_threads).where(
        slack_threads.c.request_id == request_id)).mappings().first()
    return dict(row) if row else None


def save_thread(conn: Connection, request_id: int, channel: str, ts: str) -> None:
    if thread(conn, request_id) is None:
        conn.execute(slack_threads.insert().values(request_id=request_id, channel=channel,
                                                   ts=ts))


# The sender's lease moved to ``leases.py`` (shared with the scheduler); the old names stay.
acquire_lease = leases.acquire
renew_lease = leases.renew


def list_(conn: Connection, *, state: str | None = None, channel: str | None = None,
          limit: int = 50) -> list[dict[str, Any]]:
    q = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
    if state:
        q = q.where(outbox.c.state == state)
    if channel:
        q = q.where(outbox.c.channel == channel)
    return [dict(r) for r in conn.execute(q).mappings()]


def retry(conn: Connection, row_id: int) -> bool:
    """A dead (or waiting) notification goes back to pending, due now. False if sent."""
    return bool(conn.execute(update(outbox).where(
        outbox.c.id == row_id, outbox.c.state != SENT).values(
            state=PENDING, run_after=utcnow())).rowcount)
