"""The leased job queue on SQLite and PostgreSQL."""

import time

from webhook_server.jobs.queue import DEAD, DONE, QUEUED, RUNNING, SqlJobQueue, list_jobs


def make_queue(svc, **kw):
    kw.setdefault("lease_s", 30)
    kw.setdefault("backoff_s", 0)
    return SqlJobQueue(svc.store, **kw)


def add(q, key="k1", lock=None, **kw):
    with q.store.tx() as conn:
        return q.enqueue(conn, kind="test", key=key, payload={"n": 1}, lock_key=lock, **kw)


def state(q, key):
    with q.store.tx() as conn:
        return {j["key"]: j for j in list_jobs(conn)}[key]


def test_enqueue_is_idempotent_on_the_key(svc):
    q = make_queue(svc)
    assert add(q) is True
    assert add(q) is False
    with q.store.tx() as conn:
        assert len(list_jobs(conn)) == 1


def test_claim_complete_round_trip(svc):
    q = make_queue(svc)
    add(q)
    job = q.claim("w1")
    assert (job.key, job.payload, job.attempts) == ("k1", {"n": 1}, 1)
    assert q.claim("w2") is None
    assert q.complete(job)
    assert state(q, "k1")["state"] == DONE


def test_jobs_are_not_claimed_before_run_after(svc):
    q = make_queue(svc)
    add(q, delay_s=60)
    assert q.claim("w1") is None


def test_failures_back_off_then_go_dead_after_max_attempts(svc):
    q = make_queue(svc, max_attempts=2)
    add(q)
    job = q.claim("w1")
    assert q.fail(job, "boom 1") == QUEUED
    job = q.claim("w1")
    assert job.attempts == 2
    assert q.fail(job, "boom 2") == DEAD
    row = state(q, "k1")
    assert (row["state"], row["last_error"]) == (DEAD, "boom 2")
    assert q.claim("w1") is None


def test_backoff_delays_the_retry(svc):
    q = make_queue(svc, backoff_s=60)
    add(q)
    q.fail(q.claim("w1"), "transient")
    assert q.claim("w1") is None
    assert state(q, "k1")["run_after"].timestamp() > time.time() + 50


def test_a_permanent_failure_goes_dead_at_once(svc):
    q = make_queue(svc)
    add(q)
    assert q.fail(q.claim("w1"), "model does not exist", permanent=True) == DEAD


def test_an_expired_lease_is_reaped_and_reclaimed_and_the_old_owner_cannot_complete(svc):
    q = make_queue(svc, lease_s=0.05)
    add(q)
    stale = q.claim("dead-worker")
    time.sleep(0.1)  # let the lease expire (this is the behaviour under test)
    assert q.reap() == 1
    fresh = q.claim("w2")
    assert fresh.attempts == 2
    assert q.complete(stale) is False
    assert q.heartbeat(stale) is False
    assert q.complete(fresh) is True


def test_heartbeat_extends_the_lease(svc):
    q = make_queue(svc, lease_s=30)
    add(q)
    job = q.claim("w1")
    before = state(q, "k1")["lease_expires_at"]
    assert q.heartbeat(job)
    assert state(q, "k1")["lease_expires_at"] >= before
    assert q.reap() == 0


def test_one_running_job_per_lock_key(svc):
    q = make_queue(svc)
    add(q, "a1", lock="model:churn")
    add(q, "a2", lock="model:churn")
    add(q, "b1", lock="model:other")
    first = q.claim("w1")
    second = q.claim("w2")
    assert {first.key, second.key} == {"a1", "b1"}
    assert q.claim("w3") is None
    q.complete(first if first.key == "a1" else second)
    assert q.claim("w3").key == "a2"


def test_requeue_gives_a_dead_job_fresh_attempts(svc):
    q = make_queue(svc, max_attempts=1)
    add(q)
    q.fail(q.claim("w1"), "boom")
    assert q.requeue("k1") is True
    assert q.requeue("k1") is False  # no longer dead
    job = q.claim("w1")
    assert job.attempts == 1 and state(q, "k1")["state"] == RUNNING


def test_claim_by_key_takes_only_that_job(svc):
    q = make_queue(svc)
    add(q, "older")
    add(q, "mine", lock="model:churn")
    assert q.claim("cli", key="absent") is None
    assert q.claim("cli", key="mine").key == "mine"
    assert q.claim("cli", key="mine") is None  # running: not claimable twice
    assert q.claim("w1").key == "older"
