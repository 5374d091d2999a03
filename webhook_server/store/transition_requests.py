"""Repository functions for transition requests and their history. They record rows only:
who hears of a change is the caller's decision (``intake/tell.py``), made in the same
transaction.

Whole requests leave the store as ``records.Request`` (``get``, ``lock``, ``list_``,
``open_for_model``) and history lines as ``records.RequestEvent`` (``history``,
``last_event_into``): frozen dataclasses, never rows. ``open_for_version``, on the intake
hot path, returns a few plain fields straight from the driver."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, or_, select, update

from webhook_server import contract
from webhook_server.core import scrub
from webhook_server.store import fastsql, stage_timing, states
from webhook_server.store.records import Moved, Request, RequestEvent
from webhook_server.store.schema import request_events, requests, utcnow


def create(conn: Connection, *, model: str, version: str, target: str | None,
           raw_target: str, origin: str, state: str, reason: str | None = None,
           delivery_pk: int | None = None, requested_by: str | None = None,
           comment: str | None = None, actor: str = "intake") -> int:
    fast = fastsql.for_conn(conn)  # on the intake hot path
    reason, comment = scrub.maybe(reason), scrub.maybe(comment)  # model and user text
    now = fast.ts(utcnow())
    (request_id,) = fast.one(conn, "insert_request", {
        "model": model, "version": version, "target": target, "raw_target": raw_target,
        "origin": origin, "state": state, "reason": reason, "delivery_pk": delivery_pk,
        "requested_by": requested_by, "comment": comment, "now": now})
    fast.send(conn, "insert_event", {"request_id": request_id, "now": now, "from_state": None,
                                    "to_state": state, "actor": actor, "note": reason})
    return request_id


def transition(conn: Connection, request_id: int, *, expect: tuple[str, ...], to: str,
               actor: str, reason: str | None = None) -> Moved | None:
    """Compare-and-set the state: moves only from one of ``expect``. What it recorded when
    it moved, else None. The reason (a model's error, a stderr tail, a person's words) is
    scrubbed here."""
    reason = scrub.maybe(reason)
    now = utcnow()
    row = conn.execute(select(requests.c.state, requests.c.checks, requests.c.comparison,
                              requests.c.created_at, requests.c.updated_at)
                       .where(requests.c.id == request_id)).first()
    if row is None or row.state not in expect:
        return None
    if not conn.execute(update(requests).where(requests.c.id == request_id,
                                               requests.c.state == row.state)
                        .values(state=to, reason=reason, updated_at=now)).rowcount:
        return None
    if row.state != to:
        stage_timing.observe(conn, row.state, row.updated_at, now)
        if to in states.TERMINAL:
            stage_timing.observe(conn, "decision", row.created_at, now)
    event_id = conn.execute(insert(request_events).values(
        request_id=request_id, at=now, from_state=row.state, to_state=to, actor=actor,
        note=reason)).inserted_primary_key[0]
    return Moved(request_id=request_id, event_id=event_id, from_state=row.state,
                 to_state=to, actor=actor, reason=reason, checks=row.checks,
                 comparison=row.comparison)


def summarise(conn: Connection, request_id: int, *, checks: str | None = None,
              comparison: str | None = None, compared_with: str | None = None) -> None:
    """Keep the checks and comparison summaries on the request (shown in messages), and
    the champion version the comparison was made against (promotion compares-and-sets)."""
    values = {k: v for k, v in (("checks", checks), ("comparison", comparison),
                                ("compared_with", compared_with)) if v}
    if values:
        conn.execute(update(requests).where(requests.c.id == request_id).values(**values))


def note(conn: Connection, request_id: int, actor: str, text: str) -> int:
    """A history line without a state change (e.g. a job ran); returns its id."""
    text = scrub.clean(text)
    state = conn.execute(select(requests.c.state).where(requests.c.id == request_id)).scalar_one()
    return conn.execute(insert(request_events).values(
        request_id=request_id, at=utcnow(), from_state=state, to_state=state, actor=actor,
        note=text)).inserted_primary_key[0]


def open_ids(conn: Connection, model: str, version: str | None = None,
             origin: str | None = None) -> list[int]:
    """Ids of the open requests, oldest first."""
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


def lock_version(conn: Connection, model: str, version: str) -> None:
    """Serialise, until the transaction ends, the writers that create requests for one
    version: the second sees the first's request. An advisory lock on PostgreSQL; nothing
    on SQLite, whose writers the store already serialises."""
    fast = fastsql.for_conn(conn)  # on the intake hot path
    if not fast.sqlite:
        fast.send(conn, "lock_version", {"key": contract.version_lock(model, version)})


def lock_alias_requests(conn: Connection, model: str) -> None:
    """Serialise, until the transaction ends, the writers of ``model``'s alias-made
    requests with an alias deletion, which names no version (``lock_version`` otherwise)."""
    fast = fastsql.for_conn(conn)
    if not fast.sqlite:
        fast.send(conn, "lock_version", {"key": contract.alias_requests_lock(model)})


def open_for_version(conn: Connection, model: str, version: str) -> list[dict[str, Any]]:
    """id, origin, target and state of the version's open requests, oldest first (the
    intake hot path: one indexed query on the bare driver)."""
    rows = fastsql.for_conn(conn).all(conn, "open_for_version",
                                      {"model": model, "version": version})
    return [{"id": i, "origin": o, "target": t, "state": s} for i, o, t, s in rows]


def exists_for(conn: Connection, model: str, version: str, origin: str, raw_target: str) -> bool:
    q = select(func.count()).select_from(requests).where(
        requests.c.model == model, requests.c.version == version, requests.c.origin == origin,
        func.lower(requests.c.raw_target) == raw_target.strip().lower())
    return conn.execute(q).scalar_one() > 0


def explains_registry(conn: Connection, model: str, version: str, since) -> bool:
    """Whether Podium's own moves account for what a registry scan begun at ``since`` saw on
    the version: a request of it waits on the shadow alias or is moving the champion from
    it (the shadow alias is the challenger alias), or ended at or after ``since`` (a scan
    that read the registry while it was open, and the store after it ended)."""
    q = select(func.count()).select_from(requests).where(
        requests.c.model == model, requests.c.version == version,
        or_(requests.c.state.in_((states.SHADOWING, states.PROMOTING)),
            and_(requests.c.state.in_(states.TERMINAL), requests.c.updated_at >= since)))
    return conn.execute(q).scalar_one() > 0


def shadowed(conn: Connection, model: str, version: str, target: str,
             ended_since: datetime | None) -> tuple[int, str] | None:
    """(id, state) of the version's newest request for ``target`` that has waited on the
    shadow alias (Podium put the version there), if it is open, or ended at or after
    ``ended_since`` (None: open only); else None."""
    still = requests.c.state.in_(states.OPEN)
    q = select(requests.c.id, requests.c.state).where(
        requests.c.model == model, requests.c.version == version,
        requests.c.target == target,
        still if ended_since is None else or_(still, requests.c.updated_at >= ended_since),
        exists().where(request_events.c.request_id == requests.c.id,
                       request_events.c.to_state == states.SHADOWING),
    ).order_by(requests.c.id.desc()).limit(1)
    row = conn.execute(q).first()
    return (row.id, row.state) if row else None


def get(conn: Connection, request_id: int) -> Request | None:
    row = conn.execute(select(requests).where(requests.c.id == request_id)).mappings().first()
    return Request.from_row(row) if row else None


def history(conn: Connection, request_id: int) -> list[RequestEvent]:
    q = (select(request_events).where(request_events.c.request_id == request_id)
         .order_by(request_events.c.id))
    return [RequestEvent.from_row(r) for r in conn.execute(q).mappings()]


def list_(conn: Connection, *, model: str | None = None, state: str | None = None,
          limit: int = 100) -> list[Request]:
    q = select(requests).order_by(requests.c.id.desc()).limit(limit)
    if model:
        q = q.where(requests.c.model == model)
    if state:
        q = q.where(requests.c.state == state)
    return [Request.from_row(r) for r in conn.execute(q).mappings()]


def set_decided_by(conn: Connection, request_id: int, actor: str) -> None:
    """Who decided; the first one stays (a retry never rewrites the decider)."""
    conn.execute(update(requests).where(requests.c.id == request_id,
                                        requests.c.decided_by.is_(None))
                 .values(decided_by=actor))


def lock(conn: Connection, request_id: int) -> Request | None:
    """The request, its row locked until the transaction ends (``SELECT ... FOR UPDATE`` on
    PostgreSQL; SQLite's single writer already serialises the transaction)."""
    row = conn.execute(select(requests).where(requests.c.id == request_id)
                       .with_for_update()).mappings().first()
    return Request.from_row(row) if row else None


def save_evidence(conn: Connection, request_id: int, evidence: dict[str, Any]) -> None:
    """Check results and comparison as JSON: a resumed job and the report read them."""
    text = scrub.redact(json.dumps(evidence, sort_keys=True, default=str))  # a model's words
    conn.execute(update(requests).where(requests.c.id == request_id).values(evidence=text))


def last_event_into(conn: Connection, request_id: int, state: str) -> RequestEvent | None:
    """The newest history line that moved the request into ``state``."""
    row = conn.execute(select(request_events).where(
        request_events.c.request_id == request_id, request_events.c.to_state == state,
        request_events.c.from_state != state).order_by(request_events.c.id.desc())
    ).mappings().first()
    return RequestEvent.from_row(row) if row else None


def open_for_model(conn: Connection, model: str) -> list[Request]:
    q = (select(requests).where(requests.c.model == model, requests.c.state.in_(states.OPEN))
         .order_by(requests.c.id))
    return [Request.from_row(r) for r in conn.execute(q).mappings()]


def set_compared_with(conn: Connection, request_id: int, champion: str | None) -> None:
    """The champion of the latest comparison (None: there was none). An approval's move
    expects the alias there."""
    conn.execute(update(requests).where(requests.c.id == request_id)
                 .values(compared_with=champion))


def clear_decided_by(conn: Connection, request_id: int) -> None:
    """The decision no longer stands (its evidence changed): decide again."""
    conn.execute(update(requests).where(requests.c.id == request_id).values(decided_by=None))


def set_requested_by(conn: Connection, request_id: int, who: str) -> None:
    conn.execute(update(requests).where(requests.c.id == request_id)
                 .values(requested_by=who[:255]))


def set_requesters(conn: Connection, request_id: int, identities: list[str]) -> None:
    """Every identity the registry names for a request made there (none authenticated)."""
    conn.execute(update(requests).where(requests.c.id == request_id)
                 .values(requesters=json.dumps([i[:255] for i in identities][:10])))


def set_model_sha256(conn: Connection, request_id: int, digest: str) -> None:
    """The digest of the model files that were checked (what an approval approves)."""
    conn.execute(update(requests).where(requests.c.id == request_id)
                 .values(model_sha256=digest))


def set_bundle(conn: Connection, request_id: int, uri: str, digest: str) -> None:
    """Where the evidence bundle of the request's judgement is, and its digest."""
    conn.execute(update(requests).where(requests.c.id == request_id)
                 .values(bundle_uri=uri, bundle_sha256=digest))


def bundle_sha256(conn: Connection, request_id: int) -> str | None:
    return conn.execute(select(requests.c.bundle_sha256)
                        .where(requests.c.id == request_id)).scalar()


def judged(conn: Connection, *, model: str | None = None, last: int = 50) -> list[Request]:
    """The newest ``last`` decided requests of each model (``model``: of that one) that
    keep an evidence bundle, newest first: what ``podium policy diff`` replays."""
    q = select(requests).where(requests.c.bundle_sha256.is_not(None),
                               requests.c.state.not_in(states.OPEN))
    if model:
        q = q.where(requests.c.model == model)
    out: list[Request] = []
    seen: dict[str, int] = {}
    for row in conn.execute(q.order_by(requests.c.id.desc())).mappings():
        if seen.get(row["model"], 0) < last:
            seen[row["model"]] = seen.get(row["model"], 0) + 1
            out.append(Request.from_row(row))
    return out
