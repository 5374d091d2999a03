"""Named leases: one process at a time, across every node, holds e.g. the outbox sender of a
channel or the scheduler. A lease is a row (name, owner, expiry) changed by compare-and-set
in the caller's transaction; the holder renews it before it runs out, and anyone may take it
once it has. Expiries are written and compared with the database's clock (``clock.db_now``):
a node whose own clock runs ahead cannot take a live lease early."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, delete, select, update

from webhook_server.store.clock import db_now
from webhook_server.store.schema import leases


def acquire(conn: Connection, name: str, owner: str, ttl_s: float) -> bool:
    """Take or renew the lease ``name``; False while another owner holds it. Two processes
    inserting the first row at once: one of them gets an integrity error (not the lease)."""
    now = db_now(conn)
    expires = now + timedelta(seconds=ttl_s)
    renewed = conn.execute(update(leases).where(
        leases.c.name == name,
        (leases.c.owner == owner) | (leases.c.expires_at < now)).values(
            owner=owner, expires_at=expires)).rowcount
    if renewed:
        return True
    if conn.execute(select(leases.c.name).where(leases.c.name == name)).first():
        return False
    conn.execute(leases.insert().values(name=name, owner=owner, expires_at=expires))
    return True


def renew(conn: Connection, name: str, owner: str, ttl_s: float) -> bool:
    """Extend the lease ``name`` only while ``owner`` holds it unexpired. Unlike
    ``acquire`` an expired lease is not taken back: another owner may have held it
    meanwhile, so what the caller read under it may be stale."""
    now = db_now(conn)
    return bool(conn.execute(update(leases).where(
        leases.c.name == name, leases.c.owner == owner, leases.c.expires_at >= now).values(
            expires_at=now + timedelta(seconds=ttl_s))).rowcount)


def holds(conn: Connection, name: str, owner: str) -> bool:
    """Whether ``owner`` holds the lease ``name`` unexpired right now (a read)."""
    return conn.execute(select(leases.c.name).where(
        leases.c.name == name, leases.c.owner == owner,
        leases.c.expires_at >= db_now(conn))).first() is not None


def release(conn: Connection, name: str, owner: str) -> bool:
    """Give the lease up (a clean stop): the next candidate takes it at once instead of
    after its expiry. False when ``owner`` did not hold it."""
    return bool(conn.execute(delete(leases).where(leases.c.name == name,
                                                  leases.c.owner == owner)).rowcount)


def drop_expired(conn: Connection, prefix: str, grace_s: float) -> int:
    """Delete the leases named ``prefix...`` that ran out more than ``grace_s`` ago (the
    heartbeat rows of worker processes that stopped without a clean release)."""
    cutoff = db_now(conn) - timedelta(seconds=grace_s)
    return conn.execute(delete(leases).where(leases.c.name.startswith(prefix, autoescape=True),
                                             leases.c.expires_at < cutoff)).rowcount
