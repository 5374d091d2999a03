"""The promotion ledger: every move of a model's champion alias."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from webhook_server.store.schema import ledger, utcnow


def record(conn: Connection, *, model: str, alias: str, from_version: str | None,
           to_version: str, kind: str, actor: str, request_id: int | None = None) -> None:
    conn.execute(insert(ledger).values(model=model, alias=alias, from_version=from_version,
                                       to_version=to_version, kind=kind, actor=actor,
                                       request_id=request_id, at=utcnow()))


def entries(conn: Connection, model: str) -> list[dict]:
    q = select(ledger).where(ledger.c.model == model).order_by(ledger.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def rollback_target(conn: Connection, model: str, current: str | None) -> str | None:
    """The version the champion had before ``current`` became champion."""
    for entry in reversed(entries(conn, model)):
        if entry["to_version"] == current:
            return entry["from_version"]
    return None
