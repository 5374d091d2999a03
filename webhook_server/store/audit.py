"""The audit trail: who did what to which subject, and when.

Rows are approvals, rejections and denied clicks (subject ``request:<id>``, see
``keys.request_subject``), rollbacks (subject the model), scheduled retrains and drift
reports (subject the model). ``detail`` is stored as JSON and read back as a dict.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from webhook_server.core import scrub
from webhook_server.store.schema import audit, utcnow

APPROVE, REJECT, DENIED = "approve", "reject", "denied"


def record(conn: Connection, *, actor: str, action: str, subject: str,
           detail: dict | None = None) -> int:
    """One audit row in the caller's transaction; returns its id."""
    return conn.execute(insert(audit).values(
        at=utcnow(), actor=actor, action=action, subject=subject,
        detail=None if detail is None else scrub.redact(  # a reason is a person's words
            json.dumps(detail, sort_keys=True, default=str)))
    ).inserted_primary_key[0]


def approvals(conn: Connection, subject: str) -> dict[str, datetime]:
    """Actor -> time of their (first) ``approve`` row on ``subject``; a new dict per call."""
    q = (select(audit.c.actor, audit.c.at)
         .where(audit.c.subject == subject, audit.c.action == APPROVE).order_by(audit.c.id))
    out: dict[str, datetime] = {}
    for actor, at in conn.execute(q):
        out.setdefault(actor, at)
    return out


def entries(conn: Connection, *, subject: str | None = None, action: str | None = None,
            limit: int = 100) -> list[dict[str, Any]]:
    """Audit rows, newest first, ``detail`` decoded (None when there is none)."""
    q = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if subject is not None:
        q = q.where(audit.c.subject == subject)
    if action is not None:
        q = q.where(audit.c.action == action)
    rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        r["detail"] = json.loads(r["detail"]) if r["detail"] else None
    return rows
