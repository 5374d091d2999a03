"""Taking one runnable job: the two ways the store allows.

Runnable: ``queued``, due (``run_after`` passed), and its lock (``lock_key``, e.g. the
model) not held by a running job. Whatever the way, the partial unique index on
``lock_key`` where ``state = 'running'`` is what guarantees one running job per lock across
every process and machine: a claim that would make a second one fails with an integrity
error and is retried on what is runnable then.

- SQLite (one writer at a time anyway): read up to 8 candidates, then a compare-and-set
  ``UPDATE ... WHERE state = 'queued'`` per candidate until one sticks.
- PostgreSQL: one statement, ``UPDATE jobs ... FROM (SELECT id ... LIMIT 1 FOR UPDATE SKIP
  LOCKED)``: the pick and the lease in one transaction; concurrent claimers skip the rows
  another claimer has locked instead of waiting for them or racing on the same one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from webhook_server.store import Store
from webhook_server.store.clock import db_now
from webhook_server.store.schema import jobs

QUEUED, RUNNING = "queued", "running"
SQLITE_CANDIDATES = 8
PG_RETRIES = 4  # lock conflicts in a row before giving up this turn (the next poll retries)

Row = Mapping[str, Any]


def claim_row(store: Store, owner: str, lease: timedelta, key: str | None = None) -> Row | None:
    """Lease the oldest runnable job (only the job ``key`` when given) to ``owner``; the
    job's row as it is now leased, or None when nothing is runnable."""
    if store.dialect == "postgresql":
        return _claim_skip_locked(store, owner, lease, key)
    return _claim_compare_and_set(store, owner, lease, key)


def _runnable(now, key: str | None):
    running = jobs.alias("running")
    lock_busy = exists().where(running.c.lock_key == jobs.c.lock_key,
                               running.c.state == RUNNING)
    conditions = [jobs.c.state == QUEUED, jobs.c.run_after <= now,
                  or_(jobs.c.lock_key.is_(None), ~lock_busy)]
    if key is not None:
        conditions.append(jobs.c.key == key)
    return conditions


def _lease_values(owner: str, lease: timedelta, now) -> dict[str, Any]:
    return {"state": RUNNING, "lease_owner": owner, "attempts": jobs.c.attempts + 1,
            "lease_expires_at": now + lease, "updated_at": now}


def _claim_compare_and_set(store: Store, owner: str, lease: timedelta,
                           key: str | None) -> Row | None:
    with store.read() as conn:
        candidates = (select(jobs.c.id).where(*_runnable(db_now(conn), key))
                      .order_by(jobs.c.run_after, jobs.c.id).limit(SQLITE_CANDIDATES))
        ids = list(conn.execute(candidates).scalars())
    for job_id in ids:
        try:
            with store.tx() as conn:
                now = db_now(conn)
                row = conn.execute(
                    update(jobs).where(jobs.c.id == job_id, jobs.c.state == QUEUED)
                    .values(**_lease_values(owner, lease, now))
                    .returning(jobs)).mappings().first()
        except IntegrityError:  # another job holding the same lock started meanwhile
            continue
        if row is not None:
            return row
    return None


def _claim_skip_locked(store: Store, owner: str, lease: timedelta,
                       key: str | None) -> Row | None:
    """Two claimers may pick two jobs of one lock at the same moment (neither sees the
    other running yet): the second one's UPDATE waits for the first's commit, then fails on
    the unique index; its retry sees the first running and picks something else."""
    for _ in range(PG_RETRIES):
        try:
            with store.tx() as conn:
                now = db_now(conn)
                picked = (select(jobs.c.id).where(*_runnable(now, key))
                          .order_by(jobs.c.run_after, jobs.c.id).limit(1)
                          .with_for_update(skip_locked=True, of=jobs).cte("picked"))
                return conn.execute(
                    update(jobs).where(jobs.c.id == picked.c.id)
                    .values(**_lease_values(owner, lease, now))
                    .returning(jobs)).mappings().first()
        except IntegrityError:
            continue
    return None
