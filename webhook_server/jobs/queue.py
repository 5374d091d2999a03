"""The job queue: one small interface, one SQL implementation (SQLite and PostgreSQL).

Any number of worker processes, on any number of machines, share the table: claiming is a
compare-and-set on SQLite and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (``claim.py``). A
partial unique index on ``lock_key`` (where state = 'running') keeps at most one job per
lock running: that is how one decision at a time per registered model is enforced.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, and_, func, select, update

from webhook_server import contract
from webhook_server.core import scrub, tracing
from webhook_server.jobs import listen
from webhook_server.jobs.claim import claim_row
from webhook_server.jobs.doorbell import Doorbell
from webhook_server.jobs.listen import PgWakeup
from webhook_server.store import Store, fastsql, outbox
from webhook_server.store.clock import db_now
from webhook_server.store.schema import jobs

log = logging.getLogger(__name__)
QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"
LEASE_EXPIRED = "lease expired: worker stopped mid-job"
LEASE_EXPIRED_LAST = "lease expired: worker stopped mid-job on its last attempt"

# Called in the transaction that marks a job of its kind dead: (conn, payload, error).
DeadHook = Callable[[Connection, dict[str, Any], str], None]


@dataclass(frozen=True)
class Job:
    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_owner: str
    # the W3C trace context of the span that queued the job (tracing.carrier), if any
    trace_context: str | None = field(default=None, compare=False)
    # Set by the worker: raises ``LeaseLost`` once this worker no longer holds the lease.
    # Handlers call it before each external effect (None outside a worker, e.g. in tests).
    fence: Callable[[], None] | None = field(default=None, compare=False, repr=False)


class JobQueue(Protocol):
    def enqueue(self, conn: Connection, *, kind: str, key: str, payload: dict[str, Any],
                lock_key: str | None = None, delay_s: float = 0) -> bool: ...
    def claim(self, owner: str, *, key: str | None = None) -> Job | None: ...
    def heartbeat(self, job: Job) -> bool: ...
    def holds(self, job: Job) -> bool: ...
    def complete(self, job: Job) -> bool: ...
    def fail(self, job: Job, error: str, *, permanent: bool = False,
             delay_s: float | None = None) -> str: ...
    def defer(self, job: Job, delay_s: float, why: str) -> None: ...
    def reap(self) -> int: ...
    def requeue(self, key: str, conn: Connection | None = None) -> bool: ...
    def on_dead(self, kind: str, hook: DeadHook) -> None: ...


class SqlJobQueue:
    def __init__(self, store: Store, *, lease_s: float = 60, max_attempts: int = 6,
                 backoff_s: float = 2.0,
                 doorbell: Doorbell | PgWakeup | None = None) -> None:
        """``doorbell``: rung once a transaction that enqueued a runnable job commits, so an
        idle worker starts it at once instead of at its next poll. On PostgreSQL the
        transaction itself notifies the listening workers of every machine (``listen.py``)."""
        self.store = store
        self.doorbell = doorbell
        self.lease = timedelta(seconds=lease_s)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._dead_hooks: dict[str, DeadHook] = {}

    def on_dead(self, kind: str, hook: DeadHook) -> None:
        """Run ``hook`` in the transaction that marks a job of ``kind`` dead, so what the job
        was moving (a request) is settled with its burial: never a dead job and an open
        request. One hook per kind, the latest wins (building the handlers twice must not
        run it twice). Register it on every queue that fails or reaps jobs."""
        self._dead_hooks[kind] = hook

    def enqueue(self, conn: Connection, *, kind: str, key: str, payload: dict[str, Any],
                lock_key: str | None = None, delay_s: float = 0) -> bool:
        """Insert unless ``key`` exists. True when a row was added. Runs in the caller's tx."""
        fast = fastsql.for_conn(conn)  # on the intake hot path
        row = {"key": key, "kind": kind, "payload": json.dumps(payload, sort_keys=True),
               "lock_key": lock_key, "max_attempts": self.max_attempts,
               "trace_context": tracing.carrier()}
        if not fast.sqlite:  # one statement: the clock, the row and the NOTIFY (listen.py)
            return fast.one(conn, "insert_job_pg", {
                **row, "delay_s": float(delay_s), "channel": listen.CHANNEL}) is not None
        now = fast.now(conn)  # the database's clock, like every lease and claim
        added = fast.one(conn, "insert_job", {
            **row, "run_after": fast.ts(now + timedelta(seconds=delay_s)),
            "now": fast.ts(now)}) is not None
        if added and delay_s <= 0:
            self._wake(conn)
        return added

    def job_row(self, *, kind: str, key: str, payload: dict[str, Any],
                lock_key: str | None = None) -> dict[str, Any]:
        """What ``enqueue`` would insert, for a statement that inserts the job itself (the
        intake's one call on PostgreSQL, ``store/one_call.py``): with this queue's max
        attempts and the channel whose NOTIFY wakes the workers."""
        return {"kind": kind, "key": key, "payload": payload, "lock_key": lock_key,
                "max_attempts": self.max_attempts, "channel": listen.CHANNEL}

    def _wake(self, conn: Connection) -> None:
        """Wake idle workers once ``conn``'s transaction commits: on PostgreSQL by NOTIFY
        (every machine; dropped on rollback), on SQLite by the doorbell (this machine)."""
        if conn.dialect.name == "postgresql":
            listen.notify(conn)
        elif self.doorbell is not None:
            Store.after_commit(conn, "doorbell", self.doorbell.ring)

    def claim(self, owner: str, *, key: str | None = None) -> Job | None:
        """Lease the oldest runnable job whose lock is free (only the job ``key`` when given:
        a CLI seeing its own job through); None when there is none (``claim.py``)."""
        row = claim_row(self.store, owner, self.lease, key)
        if row is None:
            return None
        return Job(row["id"], row["key"], row["kind"], json.loads(row["payload"]),
                   row["attempts"], row["max_attempts"], owner,
                   trace_context=row["trace_context"])

    def _owned(self, job: Job):
        return and_(jobs.c.id == job.id, jobs.c.state == RUNNING,
                    jobs.c.lease_owner == job.lease_owner)

    def heartbeat(self, job: Job) -> bool:
        with self.store.tx() as conn:
            now = db_now(conn)
            return conn.execute(update(jobs).where(self._owned(job))
                                .values(lease_expires_at=now + self.lease,
                                        updated_at=now)).rowcount == 1

    def holds(self, job: Job) -> bool:
        """Whether ``job.lease_owner`` still holds a live lease on the job: the fence a
        handler checks before an external effect (a read, no write)."""
        with self.store.read() as conn:
            return conn.execute(select(jobs.c.id).where(
                self._owned(job), jobs.c.lease_expires_at > db_now(conn))).first() is not None

    def complete(self, job: Job) -> bool:
        """Mark done; False when the lease was lost (another worker owns the job now)."""
        with self.store.tx() as conn:
            return conn.execute(update(jobs).where(self._owned(job))
                                .values(state=DONE, lease_owner=None, lease_expires_at=None,
                                        last_error=None, updated_at=db_now(conn))).rowcount == 1

    def fail(self, job: Job, error: str, *, permanent: bool = False,
             delay_s: float | None = None) -> str:
        """Schedule a retry with exponential backoff (after ``delay_s`` when the failure
        said how long to wait), or mark dead. Returns the new state."""
        error = scrub.clean(error, 4000)  # often a model's or a server's words
        dead = permanent or job.attempts >= job.max_attempts
        delay = timedelta(seconds=self.backoff_s * 2 ** (job.attempts - 1)
                          if delay_s is None else delay_s)
        with self.store.tx() as conn:
            now = db_now(conn)
            moved = conn.execute(update(jobs).where(self._owned(job)).values(
                state=DEAD if dead else QUEUED, lease_owner=None, lease_expires_at=None,
                last_error=error, run_after=now if dead else now + delay,
                updated_at=now)).rowcount
            if dead and moved:
                self._bury(conn, job.id, job.key, job.kind, job.payload, job.attempts, error)
        return DEAD if dead else QUEUED

    def defer(self, job: Job, delay_s: float, why: str) -> None:
        """Put the job back for later without spending an attempt."""
        with self.store.tx() as conn:
            now = db_now(conn)
            conn.execute(update(jobs).where(self._owned(job)).values(
                state=QUEUED, lease_owner=None, lease_expires_at=None, last_error=why,
                attempts=jobs.c.attempts - 1, run_after=now + timedelta(seconds=delay_s),
                updated_at=now))

    def reap(self) -> int:
        """Return jobs whose lease expired (their worker died) to the queue. One that used
        all its attempts goes dead instead: a job that kills its worker every time must end.
        Returns how many jobs were requeued or buried."""
        with self.store.tx() as conn:
            now = db_now(conn)
            expired = and_(jobs.c.state == RUNNING, jobs.c.lease_expires_at < now)
            cleared = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
            buried = conn.execute(
                update(jobs).where(expired, jobs.c.attempts >= jobs.c.max_attempts)
                .values(state=DEAD, last_error=LEASE_EXPIRED_LAST, **cleared)
                .returning(jobs.c.id, jobs.c.key, jobs.c.kind, jobs.c.payload,
                           jobs.c.attempts)).mappings().all()
            for row in buried:
                self._bury(conn, row["id"], row["key"], row["kind"], json.loads(row["payload"]),
                           row["attempts"], LEASE_EXPIRED_LAST)
            requeued = conn.execute(update(jobs).where(expired).values(
                state=QUEUED, last_error=LEASE_EXPIRED, **cleared)).rowcount
        return len(buried) + requeued

    def _bury(self, conn: Connection, job_id: int, key: str, kind: str,
              payload: Mapping[str, Any], attempts: int, error: str) -> None:
        """The rest of marking a job dead, in the same transaction: its kind's hooks, then
        the alert. A hook that raises is rolled back to a savepoint and named in the alert:
        the job is buried anyway, or a broken hook would keep it (and the reaper) looping."""
        hook = self._dead_hooks.get(kind)
        broken = hook and _run_hook(conn, hook, dict(payload), error, key)
        outbox.emit(conn, key=contract.job_dead_note(job_id, attempts), kind="message",
                    payload={"what": "job_dead", "job": key, "kind": kind,
                             "attempts": attempts, "error": error[:300],
                             "hook_error": broken[:300] if broken else None})

    def requeue(self, key: str, conn: Connection | None = None) -> bool:
        """Give a dead job a fresh set of attempts (``podium replay``), in the caller's
        transaction when ``conn`` is given."""
        if conn is None:
            with self.store.tx() as conn:
                return self.requeue(key, conn)
        now = db_now(conn)
        moved = conn.execute(update(jobs).where(jobs.c.key == key, jobs.c.state == DEAD)
                             .values(state=QUEUED, attempts=0, run_after=now,
                                     updated_at=now)).rowcount == 1
        if moved:
            self._wake(conn)
        return moved


def _run_hook(conn: Connection, hook: DeadHook, payload: dict[str, Any], error: str,
              key: str) -> str | None:
    """Run one dead hook inside a savepoint; the error text when it raised, else None."""
    try:
        with conn.begin_nested():
            hook(conn, payload, error)
    except Exception as exc:
        log.exception("dead hook for job %s failed", key)
        return f"{type(exc).__name__}: {exc}"
    return None


def counts(conn: Connection) -> dict[str, int]:
    q = select(jobs.c.state, func.count()).group_by(jobs.c.state)
    return {state: n for state, n in conn.execute(q)}


def oldest_runnable_age_s(conn: Connection) -> float:
    now = db_now(conn)
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


def job_state(conn: Connection, key: str) -> str | None:
    """The state of the job ``key`` (None when there is no such job)."""
    return conn.execute(select(jobs.c.state).where(jobs.c.key == key)).scalar()


def settle_queued(conn: Connection, key: str) -> bool:
    """Mark the job ``key`` done while no worker has claimed it yet (its work was done by
    whoever queued it, e.g. a Reject click's modal opened within the request). False when a
    worker holds it already, or it ended."""
    return conn.execute(update(jobs).where(jobs.c.key == key, jobs.c.state == QUEUED).values(
        state=DONE, last_error=None, updated_at=db_now(conn))).rowcount == 1
