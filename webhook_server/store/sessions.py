"""Web page sessions in the store (``ui_sessions``): a token login gets a random id, the
cookie carries it and the table its SHA-256, so a stolen table opens nothing and logout,
expiry or ``podium sessions revoke`` end a session on every node at once. Times are the
database's (``clock.db_now``), like the leases."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from secrets import token_urlsafe

from sqlalchemy import Connection, delete, select

from webhook_server.store.clock import db_now
from webhook_server.store.schema import ui_sessions

ID_BYTES = 32


@dataclass(frozen=True)
class Session:
    name: str
    token_digest: str
    created_at: datetime
    expires_at: datetime


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


def create(conn: Connection, name: str, token_digest: str, ttl_s: float) -> str:
    """A new session of ``name`` lasting ``ttl_s`` seconds; returns its id (for the cookie,
    never stored). Sessions already expired are deleted on the way."""
    now = db_now(conn)
    conn.execute(delete(ui_sessions).where(ui_sessions.c.expires_at <= now))
    session_id = token_urlsafe(ID_BYTES)
    conn.execute(ui_sessions.insert().values(
        id_hash=id_hash(session_id), name=name, token_digest=token_digest, created_at=now,
        expires_at=now + timedelta(seconds=ttl_s)))
    return session_id


def find(conn: Connection, session_id: str) -> Session | None:
    """The live session of that id, or None (unknown, ended or expired)."""
    row = conn.execute(select(ui_sessions).where(
        ui_sessions.c.id_hash == id_hash(session_id),
        ui_sessions.c.expires_at > db_now(conn))).mappings().first()
    return None if row is None else Session(row["name"], row["token_digest"],
                                            row["created_at"], row["expires_at"])


def end(conn: Connection, session_id: str) -> bool:
    """Logout: the session is gone everywhere. False when there was none."""
    return bool(conn.execute(delete(ui_sessions).where(
        ui_sessions.c.id_hash == id_hash(session_id))).rowcount)


def live(conn: Connection) -> list[Session]:
    rows = conn.execute(select(ui_sessions).where(ui_sessions.c.expires_at > db_now(conn))
                        .order_by(ui_sessions.c.name, ui_sessions.c.created_at)).mappings()
    return [Session(r["name"], r["token_digest"], r["created_at"], r["expires_at"])
            for r in rows]


def revoke(conn: Connection, names: Iterable[str]) -> int:
    """End every session of these token names; how many were live or not."""
    names = sorted(set(names))
    if not names:
        return 0
    return conn.execute(delete(ui_sessions).where(ui_sessions.c.name.in_(names))).rowcount
