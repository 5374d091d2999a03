"""Repository functions for transition requests and their history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from webhook_server.store import fastsql, outbox, states
from webhook_server.store.schema import request_events, requests, utcnow


def create(conn: Connection, *, model: str, version: str, target: str | None,
           raw_target: str, origin: str, state: str, reason: str | None = None,
           delivery_pk: int | None = None, requested_by: str | None = None,
           comment: str | None = None, actor: str = "intake") -> int:
    fast = fastsql.for_conn(conn)  # on the intake hot path
    now = fast.ts(utcnow())
    (request_id,) = fast.one(conn, "insert_request", {
        "model": model, "version": version, "target": target, "raw_target": raw_target,
        "origin": origin, "state": state, "reason": reason, "delivery_pk": delivery_pk,
        "requested_by": requested_by, "comment": comment, "now": now})
    fast.one(conn, "insert_event", {"request_id": request_id, "now": now, "from_state": None,
                                    "to_state": state, "actor": actor, "note": reason})
    outbox.emit(conn, key=f"request:{request_id}:created", kind="step", request_id=request_id,
                payload={"to": state, "actor": actor, "reason": reason})
    return request_id


def transition(conn: Connection, request_id: int, *, expect: tuple[str, ...], to: str,
               actor: str, reason: str | None = None) -> bool:
    """Compare-and-set the state: moves only from one of ``expect``. True when it moved."""
    now = utcnow()
    row = conn.execute(select(requests.c.state, requests.c.checks, requests.c.comparison)
                       .where(requests.c.id == request_id)).first()
    if row is None or row.state not in expect:
        return False
    moved = conn.execute(update(requests).where(requests.c.id == request_id,
                                                requests.c.state == row.state)
                         .values(state=to, reason=reason, updated_at=now)).rowcount
    if moved:
        event_id = conn.execute(insert(request_events).values(
            request_id=request_id, at=now, from_state=row.state, to_state=to, actor=actor,
            note=reason)).inserted_primary_key[0]
        outbox.emit(conn, key=f"request:{request_id}:event:{event_id}", kind="step",
                    request_id=request_id,
                    payload={"from": row.state, "to": to, "actor": actor, "reason": reason,
                             "checks": row.checks, "comparison": row.comparison})
        if to in states.TERMINAL:  # the merge request hears of the decision (gitlab.py)
            outbox.emit(conn, key=f"gitlab:request:{request_id}:decision", kind="decision",
                        request_id=request_id, channel="gitlab", payload={"state": to})
    return bool(moved)


def summarise(conn: Connection, request_id: int, *, checks: str | None = None,
              comparison: str | None = None, compared_with: str | None = None) -> None:
    """Keep the checks and comparison summaries on the request (shown in messages), and
    the champion version the comparison was made against (promotion compares-and-sets)."""
    values = {k: v for k, v in (("checks", checks), ("comparison", comparison),
                                ("compared_with", compared_with)) if v}
    if values:
        conn.execute(update(requests).where(requests.c.id == request_id).values(**values))


def note(conn: Connection, request_id: int, actor: str, text: str,
         notify: bool = False) -> None:
    """A history line without a state change (e.g. a job ran); ``notify`` also posts it."""
    state = conn.execute(select(requests.c.state).where(requests.c.id == request_id)).scalar_one()
    event_id = conn.execute(insert(request_events).values(
        request_id=request_id, at=utcnow(), from_state=state, to_state=state, actor=actor,
        note=text)).inserted_primary_key[0]
    if notify:
        outbox.emit(conn, key=f"request:{request_id}:event:{event_id}", kind="step",
                    request_id=request_id, payload={"text": text, "actor": actor})


def open_ids(conn: Connection, model: str, version: str | None = None,
             origin: str | None = None) -> list[int]:
    if origin is None and version is not None:  # the intake hot path
        return [r[0] for r in fastsql.for_conn(conn).all(
            conn, "open_for_version", {"model": model, "version": version})]
    q = select(requests.c.id).where(requests.c.model == model,
                                    requests.c.state.in_(states.OPEN))
    if version is not None:
        q = q.where(requests.c.version == version)
    if origin is not None:
        q = q.where(requests.c.origin == origin)
    return list(conn.execute(q.order_by(requests.c.id)).scalars())


def exists_for(conn: Connection, model: str, version: str, origin: str, raw_target: str) -> bool:
    q = select(func.count()).select_from(requests).where(
        requests.c.model == model, requests.c.version == version, requests.c.origin == origin,
        func.lower(requests.c.raw_target) == raw_target.strip().lower())
    return conn.execute(q).scalar_one() > 0


def get(conn: Connection, request_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(requests).where(requests.c.id == request_id)).mappings().first()
    return dict(row) if row else None


def history(conn: Connection, request_id: int) -> list[dict[str, Any]]:
    q = (select(request_events).where(request_events.c.request_id == request_id)
         .order_by(request_events.c.id))
    return [dict(r) for r in conn.execute(q).mappings()]


def list_(conn: Connection, *, model: str | None = None, state: str | None = None,
          limit: int = 100) -> list[dict[str, Any]]:
    q = select(requests).order_by(requests.c.id.desc()).limit(limit)
    if model:
        q = q.where(requests.c.model == model)
    if state:
        q = q.where(requests.c.state == state)
    return [dict(r) for r in conn.execute(q).mappings()]
