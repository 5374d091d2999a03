"""Monitoring rows: the summary of each logged batch (``inference_batches``, the champion's
and each shadow's) and outcomes joined to the prediction they judge (``labels``, one per
logged prediction, so one per version that predicted the outcome's customer).

Both inserts are idempotent: a batch is keyed by its id, a label by (batch id, customer id)
and by (model, version, customer, outcome), so loading the same outcomes twice inserts
nothing the second time.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from webhook_server.store.schema import inference_batches, labels, utcnow

_JSON = ("deciles", "histogram")


def _insert(conn: Connection, table):
    return (postgresql.insert(table) if conn.dialect.name == "postgresql"
            else sqlite.insert(table))


def record_batch(conn: Connection, batch: dict[str, Any], *, rejected: int = 0,
                 source: str | None = None) -> bool:
    """One batch summary (``training.inference_log.BatchSummary`` as a dict); False when
    that batch id is already recorded."""
    row = {c.name: batch.get(c.name) for c in inference_batches.columns if c.name != "id"}
    row.update(rejected=rejected, source=source, log_path=batch.get("path"),
               role=batch.get("role") or "champion")
    for name in _JSON:
        row[name] = None if row[name] is None else json.dumps(row[name])
    stmt = (_insert(conn, inference_batches).values(**row)
            .on_conflict_do_nothing(index_elements=["batch_id"])
            .returning(inference_batches.c.id))
    return conn.execute(stmt).scalar() is not None


def batches(conn: Connection, model: str,
            since: datetime | None = None) -> list[dict[str, Any]]:
    """The model's batch summaries (scored at ``since`` or later), oldest first, JSON
    columns decoded."""
    q = (select(inference_batches).where(inference_batches.c.model == model)
         .order_by(inference_batches.c.scored_at, inference_batches.c.id))
    if since is not None:
        q = q.where(inference_batches.c.scored_at >= since)
    rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        for name in _JSON:
            r[name] = json.loads(r[name]) if r[name] else None
    return rows


def shadow_only_versions(conn: Connection, model: str) -> set[str]:
    """Versions of ``model`` logged in shadow and never as the champion."""
    roles: dict[str, set[str]] = {}
    for version, role in conn.execute(
            select(inference_batches.c.version, inference_batches.c.role).distinct()
            .where(inference_batches.c.model == model)):
        roles.setdefault(version, set()).add(role)
    return {v for v, r in roles.items() if r == {"shadow"}}


def add_labels(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert joined outcomes (model, version, batch_id, customer_id, churn, score,
    scored_at, observed_at); those already there are left as they are. Returns how many
    rows were new."""
    if not rows:
        return 0
    model = rows[0]["model"]
    before = label_count(conn, model)
    now = utcnow()
    # one label per logged prediction, and per outcome (a file loaded again adds nothing)
    stmt = _insert(conn, labels).on_conflict_do_nothing()
    conn.execute(stmt, [{**r, "loaded_at": now} for r in rows])
    return label_count(conn, model) - before


def undated_once(conn: Connection, model: str, rows: list[dict[str, Any]]) -> list[dict]:
    """``rows`` less the undated outcomes (outcome "") of a customer whose undated outcome
    is stored already, for versions it is not stored for: an undated outcome is observed
    when first loaded, so loading it again after another version scored the customer must
    not judge that version with it (the rows already stored stay: they count as loaded)."""
    undated = sorted({r["customer_id"] for r in rows if r["outcome"] == ""})
    seen: dict[str, set[str]] = {}
    for i in range(0, len(undated), 5000):  # SQLite's limit on bound values
        for customer, version in conn.execute(
                select(labels.c.customer_id, labels.c.version).where(
                    labels.c.model == model, labels.c.outcome == "",
                    labels.c.customer_id.in_(undated[i:i + 5000]))):
            seen.setdefault(customer, set()).add(version)
    return [r for r in rows if r["outcome"] != "" or r["customer_id"] not in seen
            or r["version"] in seen[r["customer_id"]]]


def label_count(conn: Connection, model: str) -> int:
    return conn.execute(select(func.count()).select_from(labels)
                        .where(labels.c.model == model)).scalar_one()


def labelled(conn: Connection, model: str, since: datetime | None = None) -> list[tuple]:
    """(version, scored_at, score, churn) of every label of ``model`` (of predictions made
    at ``since`` or later), oldest first."""
    q = (select(labels.c.version, labels.c.scored_at, labels.c.score, labels.c.churn)
         .where(labels.c.model == model).order_by(labels.c.scored_at, labels.c.id))
    if since is not None:
        q = q.where(labels.c.scored_at >= since)
    return [tuple(r) for r in conn.execute(q)]
