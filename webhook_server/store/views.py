"""Read views: the SQL of the page (``web/ui``) and of ``/metrics`` that the repository
functions do not offer. A page of requests before an id (keyset pagination), the newest
deliveries, one job, the last job of a kind, the models Podium knows; deliveries by source
and outcome, requests by state, and the health figures of ``/metrics`` (oldest open request,
last finished job of each kind, live workers, failing notifications, decayed models,
requests past their approval expiry, requests waiting for live evidence). Read-only; whole
requests still leave as ``records.Request``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from webhook_server.contract import WORKER_LEASE_PREFIX
from webhook_server.store import deliveries as inbox
from webhook_server.store import states
from webhook_server.store.clock import db_now
from webhook_server.store.records import Request
from webhook_server.store.schema import (
    audit,
    deliveries,
    jobs,
    leases,
    ledger,
    outbox,
    request_events,
    requests,
)


def requests_page(conn: Connection, *, model: str | None, state: str | None,
                  before: int | None, size: int) -> tuple[list[Request], int | None]:
    """Up to ``size`` requests, newest first, with an id below ``before``; and the id to
    ask ``before`` for the next page (None on the last page)."""
    q = select(requests).order_by(requests.c.id.desc()).limit(size + 1)
    if model:
        q = q.where(requests.c.model == model)
    if state:
        q = q.where(requests.c.state == state)
    if before is not None:
        q = q.where(requests.c.id < before)
    rows = [Request.from_row(r) for r in conn.execute(q).mappings()]
    more = rows[size - 1].id if len(rows) > size else None
    return rows[:size], more


def deliveries_recent(conn: Connection, *, limit: int = 50) -> list[dict[str, Any]]:
    """The newest deliveries (no body), each with the request it created or was linked
    to (``request_id``)."""
    q = (select(deliveries.c.id, deliveries.c.source, deliveries.c.delivery_id,
                deliveries.c.event, deliveries.c.status, deliveries.c.detail,
                deliveries.c.duplicates, deliveries.c.received_at,
                requests.c.id.label("request_id"))
         .outerjoin(requests, requests.c.delivery_pk == deliveries.c.id)
         .order_by(deliveries.c.id.desc()).limit(limit))
    out = [dict(r) for r in conn.execute(q).mappings()]
    for row in out:
        if row["request_id"] is None:
            row["request_id"] = inbox.linked_request(row["detail"])
    return out


def job(conn: Connection, job_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
    return _decoded(dict(row)) if row else None


def last_job(conn: Connection, kind: str) -> dict[str, Any] | None:
    row = conn.execute(select(jobs).where(jobs.c.kind == kind)
                       .order_by(jobs.c.id.desc()).limit(1)).mappings().first()
    return _decoded(dict(row)) if row else None


def last_delivery(conn: Connection, source: str) -> dict[str, Any] | None:
    row = conn.execute(select(deliveries.c.id, deliveries.c.delivery_id,
                              deliveries.c.received_at, deliveries.c.status)
                       .where(deliveries.c.source == source)
                       .order_by(deliveries.c.id.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def count_from(conn: Connection, source: str) -> int:
    return conn.execute(select(func.count()).select_from(deliveries)
                        .where(deliveries.c.source == source)).scalar_one()


def models(conn: Connection, limit: int = 500) -> list[str]:
    """Models with a request or a ledger row, by name."""
    names = select(requests.c.model.label("m")).union(select(ledger.c.model.label("m")))
    sub = names.subquery()
    return list(conn.execute(select(sub.c.m).order_by(sub.c.m).limit(limit)).scalars())


def known_model(conn: Connection, model: str) -> bool:
    for table in (requests, ledger):
        if conn.execute(select(table.c.id).where(table.c.model == model).limit(1)).first():
            return True
    return False


def deliveries_by_outcome(conn: Connection) -> list[tuple[str, str, int, int]]:
    """(source, status, deliveries, duplicates received again) for each pair seen."""
    q = (select(deliveries.c.source, deliveries.c.status, func.count(),
                func.coalesce(func.sum(deliveries.c.duplicates), 0))
         .group_by(deliveries.c.source, deliveries.c.status))
    return [(s, st, n, int(d)) for s, st, n, d in conn.execute(q)]


def requests_by_state(conn: Connection) -> dict[str, int]:
    q = select(requests.c.state, func.count()).group_by(requests.c.state)
    return {state: n for state, n in conn.execute(q)}


def _aware(value: Any) -> datetime | None:
    """A timestamp from an aggregate (SQLite hands those back as text, without the type)."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def oldest_open_age_s(conn: Connection) -> dict[str, float]:
    """Seconds since the oldest request in each open state last changed."""
    now = db_now(conn)
    q = (select(requests.c.state, func.min(requests.c.updated_at))
         .where(requests.c.state.in_(states.OPEN)).group_by(requests.c.state))
    return {state: max(0.0, (now - _aware(at)).total_seconds()) for state, at in conn.execute(q)}


def last_done_by_kind(conn: Connection) -> dict[str, float]:
    """Unix time at which a job of each kind last finished (done)."""
    q = (select(jobs.c.kind, func.max(jobs.c.updated_at)).where(jobs.c.state == "done")
         .group_by(jobs.c.kind))
    return {kind: _aware(at).timestamp() for kind, at in conn.execute(q)}


def live_workers(conn: Connection) -> int:
    """Worker processes whose heartbeat row has not expired."""
    return conn.execute(select(func.count()).select_from(leases).where(
        leases.c.name.startswith(WORKER_LEASE_PREFIX, autoescape=True),
        leases.c.expires_at >= db_now(conn))).scalar_one()


def outbox_health(conn: Connection) -> tuple[dict[str, int], dict[str, float]]:
    """(pending rows whose last attempt failed, age in seconds of the oldest pending row)
    by channel."""
    now = db_now(conn)
    failing = select(outbox.c.channel, func.count()).where(
        outbox.c.state == "pending", outbox.c.last_error.is_not(None)).group_by(outbox.c.channel)
    oldest = select(outbox.c.channel, func.min(outbox.c.created_at)).where(
        outbox.c.state == "pending").group_by(outbox.c.channel)
    return ({ch: n for ch, n in conn.execute(failing)},
            {ch: max(0.0, (now - _aware(at)).total_seconds()) for ch, at in conn.execute(oldest)})


def decayed_models(conn: Connection, action: str = "monitor") -> dict[str, bool]:
    """Whether the latest monitoring report of each model found its champion decayed."""
    latest = (select(audit.c.subject, func.max(audit.c.id).label("id"))
              .where(audit.c.action == action).group_by(audit.c.subject).subquery())
    q = select(audit.c.subject, audit.c.detail).join(latest, audit.c.id == latest.c.id)
    out = {}
    for model, detail in conn.execute(q):
        try:
            out[model] = bool(json.loads(detail or "{}").get("decayed"))
        except (ValueError, AttributeError):
            out[model] = False
    return out


def awaiting_since(conn: Connection) -> list[tuple[str, float]]:
    """(model, seconds since the request last changed) of requests awaiting approval with
    no decision yet: the expiry scan ends those past the policy's expiry."""
    now = db_now(conn)
    q = select(requests.c.model, requests.c.updated_at).where(
        requests.c.state == "awaiting_approval", requests.c.decided_by.is_(None))
    return [(m, (now - _aware(at)).total_seconds()) for m, at in conn.execute(q)]


def shadowing(conn: Connection) -> list[tuple[str, float, int]]:
    """(model, seconds since it entered ``shadowing``, labelled pairs at its last look) of
    each request waiting for live evidence (one per model at most: one decision at a time)."""
    now = db_now(conn)
    entered = (select(request_events.c.request_id, func.max(request_events.c.at).label("at"))
               .where(request_events.c.to_state == states.SHADOWING,
                      request_events.c.from_state != states.SHADOWING)
               .group_by(request_events.c.request_id).subquery())
    q = (select(requests.c.model, requests.c.evidence, requests.c.updated_at, entered.c.at)
         .join(entered, entered.c.request_id == requests.c.id, isouter=True)
         .where(requests.c.state == states.SHADOWING))
    out = []
    for model, evidence, updated, at in conn.execute(q):
        try:
            live = (json.loads(evidence) if evidence else {}).get("live") or {}
        except (TypeError, ValueError, AttributeError):
            live = {}
        pairs = live.get("pairs") if isinstance(live, dict) else None
        out.append((model, max(0.0, (now - _aware(at or updated)).total_seconds()),
                    int(pairs) if isinstance(pairs, int | float) else 0))
    return out


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    try:
        row["payload"] = json.loads(row["payload"])
    except (TypeError, ValueError):
        row["payload"] = {}
    if not isinstance(row["payload"], dict):
        row["payload"] = {}
    return row
