"""Hand-written SQL for the intake hot path, run on the DBAPI connection inside the caller's
SQLAlchemy transaction.

A delivery that creates a request runs six statements (eight on PostgreSQL: the version's
advisory lock, and the NOTIFY that wakes the workers); through SQLAlchemy's execution
machinery they cost ~1.4 ms of CPU, on the bare driver ~0.3 ms (bench/intake.py). Only the
INSERT/SELECTs of that path live here; everything else, and every read of these rows, goes
through SQLAlchemy and the ``UTCDateTime`` column type, whose storage format ``ts`` matches.

On PostgreSQL each statement was a network round trip of its own. In a batched transaction
(``Store.tx(batched=True)``, the intake's) they go through a psycopg pipeline: a statement
whose answer is not read (``send``: the lock, the event, the outbox rows) travels with the
next one whose answer is, BEGIN with the first and COMMIT with the last, and the job's row
carries its NOTIFY and reads the clock itself (``insert_job_pg``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from webhook_server.store import states
from webhook_server.store.clock import db_now_raw

_OPEN = ", ".join(f"'{s}'" for s in states.OPEN)

SQL = {
    "insert_delivery": (
        "INSERT INTO deliveries (source, delivery_id, event, status, detail, body, "
        "received_at, duplicates) VALUES (:source, :delivery_id, :event, :status, :detail, "
        ":body, :received_at, 0) ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id"),
    "open_for_version": (
        "SELECT id, origin, target, state FROM requests "  # noqa: S608
        "WHERE model = :model AND version = :version "
        f"AND state IN ({_OPEN}) ORDER BY id"),  # _OPEN is built from constants, not input
    # PostgreSQL only: held until the transaction ends (SQLite's writers are serialised).
    "lock_version": "SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))",
    "insert_request": (
        "INSERT INTO requests (model, version, target, raw_target, origin, state, reason, "
        "delivery_pk, requested_by, comment, created_at, updated_at) VALUES (:model, "
        ":version, :target, :raw_target, :origin, :state, :reason, :delivery_pk, "
        ":requested_by, :comment, :now, :now) RETURNING id"),
    "insert_event": (
        "INSERT INTO request_events (request_id, at, from_state, to_state, actor, note) "
        "VALUES (:request_id, :now, :from_state, :to_state, :actor, :note)"),
    "insert_job": (
        "INSERT INTO jobs (key, kind, payload, state, lock_key, attempts, max_attempts, "
        "run_after, created_at, updated_at, trace_context) VALUES (:key, :kind, :payload, "
        "'queued', :lock_key, 0, :max_attempts, :run_after, :now, :now, :trace_context) "
        "ON CONFLICT (key) DO NOTHING RETURNING id"),
    # PostgreSQL: the database's clock read in the statement (no round trip for it), and
    # the workers woken (at commit) only when the row was added and is runnable now
    "insert_job_pg": (
        "WITH added AS (INSERT INTO jobs (key, kind, payload, state, lock_key, attempts, "
        "max_attempts, run_after, created_at, updated_at, trace_context) VALUES (:key, "
        ":kind, :payload, 'queued', :lock_key, 0, :max_attempts, clock_timestamp() + "
        "make_interval(secs => :delay_s), clock_timestamp(), clock_timestamp(), "
        ":trace_context) ON CONFLICT (key) DO NOTHING RETURNING id) "
        "SELECT id, CASE WHEN :delay_s <= 0 THEN pg_notify(:channel, current_schema()) END "
        "FROM added"),
    "insert_outbox": (
        "INSERT INTO outbox (key, channel, kind, request_id, payload, state, attempts, "
        "run_after, created_at, trace_context) VALUES (:key, :channel, :kind, :request_id, "
        ":payload, 'pending', 0, :now, :now, :trace_context) ON CONFLICT (key) DO NOTHING"),
}


_BY_DIALECT: dict[str, FastSql] = {}


def for_conn(conn: Connection) -> FastSql:
    name = conn.dialect.name
    if name not in _BY_DIALECT:
        _BY_DIALECT[name] = FastSql(name)
    return _BY_DIALECT[name]


class FastSql:
    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.sql = SQL if self.sqlite else {
            name: re.sub(r":(\w+)", r"%(\1)s", text) for name, text in SQL.items()}

    def ts(self, value: datetime) -> Any:
        """A timestamp as the ``UTCDateTime`` column stores it on this dialect."""
        if self.sqlite:  # SQLAlchemy's SQLite DATETIME storage format, naive UTC
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def now(self, conn: Connection) -> datetime:
        """The database's clock (``clock.db_now``), on the bare driver."""
        cur = conn.connection.driver_connection.cursor()
        try:
            return db_now_raw(cur, self.sqlite)
        finally:
            cur.close()

    def one(self, conn: Connection, name: str, params: dict[str, Any]) -> tuple | None:
        """The first row of a statement that returns rows (None: it returned none)."""
        cur = conn.connection.driver_connection.cursor()
        try:
            cur.execute(self.sql[name], params)
            return cur.fetchone()
        finally:
            cur.close()

    def later(self, conn: Connection, name: str, params: dict[str, Any]
              ) -> Callable[[], tuple | None]:
        """``one``, its row read when the returned function is called: on PostgreSQL the
        statements sent meanwhile travel with it (inside a batched transaction). SQLite
        reads it at once (a statement left unfinished would hold the transaction)."""
        if self.sqlite:
            row = self.one(conn, name, params)
            return lambda: row
        cur = conn.connection.driver_connection.cursor()
        try:
            cur.execute(self.sql[name], params)
        except BaseException:
            cur.close()
            raise

        def row() -> tuple | None:
            try:
                return cur.fetchone()
            finally:
                cur.close()
        return row

    def send(self, conn: Connection, name: str, params: dict[str, Any]) -> None:
        """Run a statement whose answer nobody reads (inside ``batched`` on PostgreSQL it
        travels with the next statement that is read; an error raises there, or at the
        end of the stretch)."""
        cur = conn.connection.driver_connection.cursor()
        try:
            cur.execute(self.sql[name], params)
        finally:
            cur.close()

    def all(self, conn: Connection, name: str, params: dict[str, Any]) -> list[tuple]:
        cur = conn.connection.driver_connection.cursor()
        try:
            cur.execute(self.sql[name], params)
            return cur.fetchall()
        finally:
            cur.close()
