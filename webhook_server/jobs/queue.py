"""The job queue: one small interface, one SQL implementation (SQLite and PostgreSQL).

Claiming is a compare-and-set on the row, so any number of worker processes can share the
table. A partial unique index on ``lock_key`` (where state = 'running') keeps at most one job
per lock running: that is how one decision at a time per registered model is enforced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from webhook_server.store import Store, fastsql, outbox
from webhook_server.store.schema import jobs, utcnow

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"


@dataclass(frozen=True)
class Job:
    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_owner: str


class JobQueue(Protocol):
    def enqueue(self, conn: Connection, *, kind: str, key: str, payload: dict[str, Any],
                lock_key: str | None = None, delay_s: float = 0) -> bool: ...
    def claim(self, owner: str) -> Job | None: ...
    def heartbeat(self, job: Job) -> bool: ...
    def complete(self, job: Job) -> bool: ...
    def fail(self, job: Job, error: str, *, permanent: bool = False) -> str: ...
    def defer(self, job: Job, delay_s: float, why: str) -> None: ...
    def reap(self) -> int: ...
    def requeue(self, key: str) -> bool: ...


class SqlJobQueue:
    def __init__(self, store: Store, *, lease_s: float = 60, max_attempts: int = 6,
                 backoff_s: float = 2.0) -> None:
        self.store = store
        self.lease = timedelta(seconds=lease_s)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s

    def enqueue(self, conn: Connection, *, kind: str, key: str, payload: dict[str, Any],
                lock_key: str | None = None, delay_s: float = 0) -> bool:
        """Insert unless ``key`` exists. True when a row was added. Runs in the caller's tx."""
        fast = fastsql.for_conn(conn)  # on the intake hot path
        now = utcnow()
        return fast.one(conn, "insert_job", {
            "key": key, "kind": kind, "payload": json.dumps(payload, sort_keys=True),
            "lock_key": lock_key, "max_attempts": self.max_attempts,
            "run_after": fast.ts(now + timedelta(seconds=delay_s)),
            "now": fast.ts(now)}) is not None

    def claim(self, owner: str) -> Job | None:
        """Lease the oldest runnable job whose lock is free; None when there is none."""
        now = utcnow()
        running = jobs.alias("running")
        lock_busy = exists().where(running.c.lock_key == jobs.c.lock_key,
                                   running.c.state == RUNNING)
        candidates = (select(jobs.c.id).where(jobs.c.state == QUEUED, jobs.c.run_after <= now,
                                              or_(jobs.c.lock_key.is_(None), ~lock_busy))
                      .order_by(jobs.c.run_after, jobs.c.id).limit(8))
        with self.store.read() as conn:
            ids = list(conn.execute(candidates).scalars())
        for job_id in ids:
            try:
                with self.store.tx() as conn:
                    row = conn.execute(
                        update(jobs).where(jobs.c.id == job_id, jobs.c.state == QUEUED)
                        .values(state=RUNNING, lease_owner=owner, attempts=jobs.c.attempts + 1,
                                lease_expires_at=now + self.lease, updated_at=now)
                        .returning(jobs)).mappings().first()
            except IntegrityError:  # another job holding the same lock started meanwhile
                continue
            if row is not None:
                return Job(row["id"], row["key"], row["kind"], json.loads(row["payload"]),
                           row["attempts"], row["max_attempts"], owner)
        return None

    def _owned(self, job: Job):
        return and_(jobs.c.id == job.id, jobs.c.state == RUNNING,
                    jobs.c.lease_owner == job.lease_owner)

    def heartbeat(self, job: Job) -> bool:
        now = utcnow()
        with self.store.tx() as conn:
            return conn.execute(update(jobs).where(self._owned(job))
                                .values(lease_expires_at=now + self.lease,
                                        updated_at=now)).rowcount == 1

    def complete(self, job: Job) -> bool:
        """Mark done; False when the lease was lost (another worker owns the job now)."""
        with self.store.tx() as conn:
            return conn.execute(update(jobs).where(self._owned(job))
                                .values(state=DONE, lease_owner=None, lease_expires_at=None,
                                        last_error=None, updated_at=utcnow())).rowcount == 1

    def fail(self, job: Job, error: str, *, permanent: bool = False) -> str:
        """Schedule a retry with exponential backoff, or mark dead. Returns the new state."""
        now = utcnow()
        dead = permanent or job.attempts >= job.max_attempts
        delay = timedelta(seconds=self.backoff_s * 2 ** (job.attempts - 1))
        with self.store.tx() as conn:
            moved = conn.execute(update(jobs).where(self._owned(job)).values(
                state=DEAD if dead else QUEUED, lease_owner=None, lease_expires_at=None,
                last_error=error[:4000], run_after=now if dead else now + delay,
                updated_at=now)).rowcount
            if dead and moved:
                outbox.emit(conn, key=f"job:{job.id}:dead:{job.attempts}", kind="message",
                            payload={"text": f":skull: job {job.key} ({job.kind}) is dead "
                                             f"after {job.attempts} attempt(s): {error[:300]}"
                                             " (`podium jobs --state dead`, `podium replay`)"})
        return DEAD if dead else QUEUED

    def defer(self, job: Job, delay_s: float, why: str) -> None:
        """Put the job back for later without spending an attempt."""
        now = utcnow()
        with self.store.tx() as conn:
            conn.execute(update(jobs).where(self._owned(job)).values(
                state=QUEUED, lease_owner=None, lease_expires_at=None, last_error=why,
                attempts=jobs.c.attempts - 1, run_after=now + timedelta(seconds=delay_s),
                updated_at=now))

    def reap(self) -> int:
        """Return jobs whose lease expired (their worker died) to the queue."""
        now = utcnow()
        with self.store.tx() as conn:
            return conn.execute(update(jobs).where(jobs.c.state == RUNNING,
                                                   jobs.c.lease_expires_at < now)
                                .values(state=QUEUED, lease_owner=None, lease_expires_at=None,
                                        last_error="lease expired: worker stopped mid-job",
                                        updated_at=now)).rowcount

    def requeue(self, key: str) -> bool:
        """Give a dead job a fresh set of attempts (``podium replay``)."""
        now = utcnow()
        with self.store.tx() as conn:
            return conn.execute(update(jobs).where(jobs.c.key == key, jobs.c.state == DEAD)
                                .values(state=QUEUED, attempts=0, run_after=now,
                                        updated_at=now)).rowcount == 1


def counts(conn: Connection) -> dict[str, int]:
    q = select(jobs.c.state, func.count()).group_by(jobs.c.state)
    return {state: n for state, n in conn.execute(q)}


def oldest_runnable_age_s(conn: Connection) -> float:
    now = utcnow()
    oldest = conn.execute(select(func.min(jobs.c.run_after))
                          .where(jobs.c.state == QUEUED, jobs.c.run_after <= now)).scalar()
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite hands back aggregates without the column type
        oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=UTC)
    return max(0.0, (now - oldest).total_seconds())


def list_jobs(conn: Connection, *, state: str | None = None, limit: int = 100) -> list[dict]:
    q = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
    if state:
        q = q.where(jobs.c.state == state)
    return [dict(r) for r in conn.execute(q).mappings()]
