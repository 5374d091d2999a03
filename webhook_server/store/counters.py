"""Durable counters shared by every process (exported on /metrics)."""

from __future__ import annotations

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from webhook_server.store.schema import counters

# checks and comparisons that gave no verdict, labels ``stage|outcome`` (check|compare,
# failed|transient): written by the workflow, read by /metrics (podium_gate_failures)
GATE_FAILURES = "gate_failures"


def incr(store, name: str, labels: str, by: int = 1) -> None:
    stmt = store.insert(counters).values(name=name, labels=labels, value=by)
    stmt = stmt.on_conflict_do_update(index_elements=["name", "labels"],
                                      set_={"value": counters.c.value + by})
    with store.tx() as conn:
        conn.execute(stmt)


def add(conn: Connection, name: str, labels: str, by: int = 1) -> None:
    """``incr`` inside the caller's transaction."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(counters).values(name=name, labels=labels, value=by)
    conn.execute(stmt.on_conflict_do_update(index_elements=["name", "labels"],
                                            set_={"value": counters.c.value + by}))


def read(conn: Connection, name: str) -> dict[str, int]:
    q = select(counters.c.labels, counters.c.value).where(counters.c.name == name)
    return {labels: value for labels, value in conn.execute(q)}
