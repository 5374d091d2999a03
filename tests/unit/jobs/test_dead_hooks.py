"""Dead hooks: what a job was moving is settled in the transaction that buries the job, for
a failure (permanent, or attempts used up) and for a job whose worker died on every attempt
(the reaper buries it instead of requeueing it forever)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from webhook_server import contract
from webhook_server.adapters.notify import messages
from webhook_server.jobs import queue as jq
from webhook_server.jobs.queue import DEAD, QUEUED, SqlJobQueue, list_jobs
from webhook_server.store import outbox
from webhook_server.store.schema import jobs, utcnow
from webhook_server.store.schema import outbox as outbox_table

KEY = "crash"


def make_queue(svc, **kw) -> SqlJobQueue:
    kw.setdefault("lease_s", 30)
    return SqlJobQueue(svc.store, backoff_s=0, **kw)


def enqueue(q: SqlJobQueue, kind: str = "work", key: str = KEY) -> None:
    with q.store.tx() as conn:
        q.enqueue(conn, kind=kind, key=key, payload={"request_id": 7})


def job_row(q: SqlJobQueue, key: str = KEY) -> dict:
    with q.store.read() as conn:
        return {j["key"]: j for j in list_jobs(conn)}[key]


def outbox_texts(q: SqlJobQueue) -> dict[str, str]:
    """Key -> the message as the Slack sender words it."""
    with q.store.read() as conn:
        return {r.key: messages.text(json.loads(r.payload))
                for r in conn.execute(select(outbox_table))}


def expire(q: SqlJobQueue, key: str = KEY) -> None:
    """The worker was killed: its lease runs out (the expiry moved into the past)."""
    with q.store.tx() as conn:
        conn.execute(update(jobs).where(jobs.c.key == key)
                     .values(lease_expires_at=utcnow() - timedelta(seconds=1)))


class Recorder:
    """A dead hook that records what it saw inside the burying transaction and from another
    connection, and writes an outbox row (as the workflow's hook fails the request)."""

    def __init__(self, store) -> None:
        self.store, self.calls = store, []

    def __call__(self, conn, payload, error) -> None:
        state = select(jobs.c.state).where(jobs.c.key == KEY)
        with self.store.read() as other:
            outside = other.execute(state).scalar()
        self.calls.append({"payload": payload, "error": error,
                           "inside": conn.execute(state).scalar(), "outside": outside})
        outbox.emit(conn, key="hook:request:7", kind="message",
                    payload={"text": f"request 7 failed: {error}"})


def test_a_job_that_kills_its_worker_every_time_goes_dead_with_its_hook_in_the_same_tx(svc):
    q = make_queue(svc, max_attempts=2)
    hook = Recorder(svc.store)
    q.on_dead("work", hook)
    q.on_dead("other", lambda *a: pytest.fail("a hook of another kind ran"))
    enqueue(q)
    q.claim("w1")
    expire(q)
    assert q.reap() == 1
    assert job_row(q)["state"] == QUEUED and hook.calls == []  # one attempt left
    job = q.claim("w2")
    assert job.attempts == 2
    expire(q)
    assert q.reap() == 1
    row = job_row(q)
    assert (row["state"], row["last_error"]) == (DEAD, jq.LEASE_EXPIRED_LAST)
    # the hook saw the job dead in its transaction, while others still saw it running
    assert hook.calls == [{"payload": {"request_id": 7}, "error": jq.LEASE_EXPIRED_LAST,
                           "inside": DEAD, "outside": "running"}]
    texts = outbox_texts(q)
    assert "hook:request:7" in texts and contract.job_dead_note(job.id, 2) in texts
    assert q.claim("w3") is None and q.reap() == 0


def test_a_burial_that_fails_keeps_neither_the_death_nor_the_hook_effect(svc, monkeypatch):
    q = make_queue(svc, max_attempts=1)
    q.on_dead("work", Recorder(svc.store))
    enqueue(q)
    q.claim("w1")
    expire(q)
    real = outbox.emit

    def alert_fails(conn, *, key, **kw):
        if key.startswith("job:"):
            raise ConnectionError("the database went away mid-transaction")
        return real(conn, key=key, **kw)

    monkeypatch.setattr(jq.outbox, "emit", alert_fails)
    with pytest.raises(ConnectionError):
        q.reap()
    assert job_row(q)["state"] == "running" and "hook:request:7" not in outbox_texts(q)
    monkeypatch.setattr(jq.outbox, "emit", real)
    assert q.reap() == 1 and job_row(q)["state"] == DEAD
    assert "hook:request:7" in outbox_texts(q)


def test_one_hook_per_kind_the_latest_registration_wins(svc):
    q = make_queue(svc, max_attempts=1)
    calls = []
    q.on_dead("work", lambda conn, payload, error: calls.append("first"))
    q.on_dead("work", lambda conn, payload, error: calls.append("second"))
    enqueue(q)
    q.fail(q.claim("w1"), "boom")
    assert calls == ["second"]


def test_reap_requeues_jobs_with_attempts_left_and_counts_both(svc):
    q = make_queue(svc, max_attempts=2)
    calls = []
    q.on_dead("work", lambda conn, payload, error: calls.append(payload))
    enqueue(q, key="once")
    enqueue(q, key="twice")
    q.claim("w1")
    q.claim("w1")
    expire(q, "once")
    expire(q, "twice")
    with q.store.tx() as conn:  # "twice" is on its last attempt
        conn.execute(update(jobs).where(jobs.c.key == "twice").values(attempts=2))
    assert q.reap() == 2
    assert (job_row(q, "once")["state"], job_row(q, "twice")["state"]) == (QUEUED, DEAD)
    assert job_row(q, "once")["last_error"] == jq.LEASE_EXPIRED
    assert calls == [{"request_id": 7}]


def test_a_permanent_failure_runs_the_dead_hook_a_retryable_one_does_not(svc):
    q = make_queue(svc, max_attempts=2)
    hook = Recorder(svc.store)
    q.on_dead("work", hook)
    enqueue(q)
    assert q.fail(q.claim("w1"), "MLflow unreachable") == QUEUED
    assert hook.calls == []
    assert q.fail(q.claim("w1"), "version 9 does not exist", permanent=True) == DEAD
    assert hook.calls == [{"payload": {"request_id": 7}, "error": "version 9 does not exist",
                           "inside": DEAD, "outside": "running"}]
    assert "hook:request:7" in outbox_texts(q)


def test_attempts_used_up_by_failures_run_the_dead_hook(svc):
    q = make_queue(svc, max_attempts=1)
    hook = Recorder(svc.store)
    q.on_dead("work", hook)
    enqueue(q)
    assert q.fail(q.claim("w1"), "MLflow unreachable") == DEAD
    assert [c["error"] for c in hook.calls] == ["MLflow unreachable"]


def test_a_failing_hook_is_rolled_back_named_in_the_alert_and_the_job_is_buried(svc):
    """Even an error that aborts the transaction on PostgreSQL (bad SQL) stays in the hook's
    savepoint: a broken hook must not keep a job, and the reaper, looping."""
    q = make_queue(svc, max_attempts=1)

    def broken(conn, payload, error):
        outbox.emit(conn, key="hook:request:7", kind="message", payload={"text": "half"})
        conn.execute(text("SELECT * FROM no_such_table"))

    q.on_dead("work", broken)
    enqueue(q)
    job = q.claim("w1")
    expire(q)
    assert q.reap() == 1
    assert job_row(q)["state"] == DEAD
    texts = outbox_texts(q)
    assert "hook:request:7" not in texts
    assert "its dead hook failed" in texts[contract.job_dead_note(job.id, 1)]
