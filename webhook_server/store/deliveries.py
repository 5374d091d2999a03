"""The inbox: every verified delivery, once per ``(source, delivery_id)``.

``insert`` is on the intake hot path (bare driver, ``fastsql``); a ``None`` back means the
delivery was stored before, and the caller counts the duplicate and answers with the stored
outcome (``find``). A delivery that reported a request already open is linked to it through
its detail (``already_open_detail``), since it created no request row of its own; so is one
that reported Podium's own shadow-alias move after its request ended (``shadow_move_detail``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, func, or_, select, update

from webhook_server.store import fastsql
from webhook_server.store.schema import deliveries, requests, utcnow

_ALREADY_OPEN = re.compile(r"request (\d+) is already open for this ")
_SHADOW_MOVE = re.compile(r"request (\d+) put this version on the shadow alias")
_REPLAY = "#replay-"


def insert(conn: Connection, *, source: str, delivery_id: str, event: str, status: str,
           detail: str | None, body: str) -> int | None:
    """The delivery's id, or None when ``(source, delivery_id)`` is already stored."""
    fast = fastsql.for_conn(conn)
    row = fast.one(conn, "insert_delivery", {
        "source": source, "delivery_id": delivery_id, "event": event, "status": status,
        "detail": detail, "body": body, "received_at": fast.ts(utcnow())})
    return row[0] if row else None


def insert_later(conn: Connection, *, source: str, delivery_id: str, event: str,
                 status: str, detail: str | None, body: str) -> Callable[[], int | None]:
    """``insert``, its answer read when the returned function is called (the statements
    sent before then travel with it on PostgreSQL: ``fastsql.later``)."""
    fast = fastsql.for_conn(conn)
    row = fast.later(conn, "insert_delivery", {
        "source": source, "delivery_id": delivery_id, "event": event, "status": status,
        "detail": detail, "body": body, "received_at": fast.ts(utcnow())})

    def pk() -> int | None:
        found = row()
        return found[0] if found else None
    return pk


def count_duplicate(conn: Connection, source: str, delivery_id: str) -> None:
    conn.execute(update(deliveries)
                 .where(deliveries.c.source == source, deliveries.c.delivery_id == delivery_id)
                 .values(duplicates=deliveries.c.duplicates + 1))


def set_detail(conn: Connection, pk: int, detail: str | None) -> None:
    conn.execute(update(deliveries).where(deliveries.c.id == pk).values(detail=detail))


def already_open_detail(request_id: int, origin: str) -> str:
    """Detail of a delivery that reported a request already open (same model, version,
    origin and target): the link to that request."""
    what = "tag" if origin == "tag" else f"{origin} request"
    return f"request {request_id} is already open for this {what}"


def shadow_move_detail(request_id: int) -> str:
    """Detail of an alias delivery of Podium's own shadow-alias move that arrived after the
    request that made it ended: the link to that request."""
    return (f"request {request_id} put this version on the shadow alias (Podium's own "
            "move, sent before the request ended): nothing asked")


def linked_request(detail: str | None) -> int | None:
    """The request an ``already_open_detail`` or a ``shadow_move_detail`` names, else
    None."""
    match = _ALREADY_OPEN.match(detail or "") or _SHADOW_MOVE.match(detail or "")
    return int(match.group(1)) if match else None


def find(conn: Connection, source: str, delivery_id: str) -> dict[str, Any] | None:
    """id, status, detail of a stored delivery, with ``request_id`` (the request it created,
    the open one it was linked to, or the ended one that made the shadow-alias move it
    reported), ``reason`` (of the request it created) and ``linked``
    (True when it created no request but reported an open one)."""
    row = conn.execute(select(deliveries.c.id, deliveries.c.status, deliveries.c.detail,
                              requests.c.id.label("request_id"), requests.c.reason)
                       .outerjoin(requests, requests.c.delivery_pk == deliveries.c.id)
                       .where(deliveries.c.source == source,
                              deliveries.c.delivery_id == delivery_id)).mappings().first()
    if row is None:
        return None
    out = dict(row)
    linked = linked_request(out["detail"]) if out["request_id"] is None else None
    # the answer's ``already_open``: not for the ended request whose shadow-alias move it was
    out["linked"] = linked is not None and _ALREADY_OPEN.match(out["detail"]) is not None
    if linked is not None:
        out["request_id"] = linked
    return out


def by_ref(conn: Connection, ref: str) -> list[dict[str, Any]]:
    """Deliveries whose sender's id is ``ref``, or whose number is ``ref`` when it is one,
    each with the id of the request it created (``request_id``, or None)."""
    cond = deliveries.c.delivery_id == ref
    if ref.isascii() and ref.isdigit() and len(ref) <= 18:  # fits a BIGINT
        cond = or_(cond, deliveries.c.id == int(ref))
    q = (select(deliveries, requests.c.id.label("request_id"))
         .outerjoin(requests, requests.c.delivery_pk == deliveries.c.id).where(cond))
    return [dict(r) for r in conn.execute(q).mappings()]


def replay_id(delivery_id: str, n: int) -> str:
    """The delivery id of the ``n``-th re-run of ``delivery_id`` (``podium replay``)."""
    return f"{delivery_id}{_REPLAY}{n}"


def replays(conn: Connection, source: str, delivery_id: str) -> int:
    """How many times ``delivery_id`` was re-run."""
    return conn.execute(select(func.count()).select_from(deliveries).where(
        deliveries.c.source == source,
        deliveries.c.delivery_id.like(f"{delivery_id}{_REPLAY}%"))).scalar_one()
