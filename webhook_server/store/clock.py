"""One clock for every node: the database's.

Leases (jobs' and named ones) are taken, renewed and checked against the time the store
reads, never the caller's: a node whose clock runs ahead must not see a live lease as
expired and take it early. PostgreSQL: ``clock_timestamp()`` (the server's time now, not
the transaction's start). SQLite: ``strftime('%Y-%m-%d %H:%M:%f', 'now')`` (milliseconds;
SQLite runs inside the processes of one machine, so that is the machine's clock). Returned
as an aware UTC datetime, bound like any other (``UTCDateTime``), so comparisons match the
stored format on both dialects.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, text

QUERY = {"postgresql": "SELECT clock_timestamp()",
         "sqlite": "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"}
SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def db_now(conn: Connection) -> datetime:
    """The database's current time, aware UTC."""
    value = conn.execute(text(QUERY[conn.dialect.name])).scalar_one()
    return parse(value)


def db_now_raw(cursor, sqlite: bool) -> datetime:
    """The same on a DBAPI cursor (the hand-written hot path, ``fastsql``)."""
    cursor.execute(QUERY["sqlite" if sqlite else "postgresql"])
    return parse(cursor.fetchone()[0])


def parse(value) -> datetime:
    if isinstance(value, str):  # SQLite: naive UTC text
        return datetime.strptime(value, SQLITE_FORMAT).replace(tzinfo=UTC)
    return value.astimezone(UTC)
