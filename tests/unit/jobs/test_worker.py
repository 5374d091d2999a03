"""The worker loop: outcomes of handlers, leases kept alive while a job runs."""

import threading
import time

from sqlalchemy import delete, update

from webhook_server.jobs.queue import SqlJobQueue, list_jobs
from webhook_server.jobs.worker import PermanentJobError, Worker
from webhook_server.store.clock import db_now
from webhook_server.store.schema import jobs


def setup(svc, handler, **kw):
    q = SqlJobQueue(svc.store, lease_s=30, backoff_s=0, max_attempts=kw.get("max_attempts", 3))
    with svc.store.tx() as conn:
        q.enqueue(conn, kind="work", key="job-1", payload={"x": 1})
    return q, Worker(q, {"work": handler}, owner="w", poll_s=0.01, lease_s=30)


def job_row(q):
    with q.store.tx() as conn:
        return list_jobs(conn)[0]


def test_a_successful_handler_completes_the_job_with_its_payload(svc):
    seen = []
    q, w = setup(svc, lambda job: seen.append(job.payload))
    assert w.run_once().key == "job-1"
    assert seen == [{"x": 1}] and job_row(q)["state"] == "done"


def test_a_raising_handler_is_retried_then_dead_with_the_error(svc):
    def boom(job):
        raise ConnectionError("MLflow unreachable")

    q, w = setup(svc, boom, max_attempts=2)
    w.run_once()
    w.run_once()
    row = job_row(q)
    assert (row["state"], row["attempts"]) == ("dead", 2)
    assert row["last_error"] == "ConnectionError: MLflow unreachable"


def test_a_permanent_error_is_not_retried(svc):
    def missing(job):
        raise PermanentJobError("version does not exist")

    q, w = setup(svc, missing)
    w.run_once()
    assert (job_row(q)["state"], job_row(q)["attempts"]) == ("dead", 1)


def test_an_unknown_kind_goes_dead_with_a_clear_reason(svc):
    q, _ = setup(svc, lambda job: None)
    w = Worker(q, {}, owner="w")
    w.run_once()
    assert job_row(q)["last_error"] == "no handler for job kind 'work'"


def test_the_heartbeat_keeps_a_long_job_leased_past_its_lease_time(svc):
    """Lease 0.3 s, job 1 s: without heartbeats another worker would reclaim it."""
    started, release = threading.Event(), threading.Event()

    def slow(job):
        started.set()
        release.wait(5)

    q = SqlJobQueue(svc.store, lease_s=0.3, backoff_s=0)
    with svc.store.tx() as conn:
        q.enqueue(conn, kind="work", key="slow", payload={})
    w = Worker(q, {"work": slow}, owner="w1", lease_s=0.3)
    t = threading.Thread(target=w.run_once)
    t.start()
    started.wait(5)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert q.reap() == 0
        assert q.claim("w2") is None
        time.sleep(0.05)
    release.set()
    t.join()
    assert job_row(q)["state"] == "done" and job_row(q)["attempts"] == 1


def test_run_stops_when_asked(svc):
    q, w = setup(svc, lambda job: None)
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,))
    t.start()
    deadline = time.monotonic() + 5
    while job_row(q)["state"] != "done" and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join(5)
    assert not t.is_alive() and job_row(q)["state"] == "done"


def test_run_once_with_a_key_runs_only_that_job(svc):
    seen = []
    q, w = setup(svc, lambda job: seen.append(job.key))
    with svc.store.tx() as conn:
        q.enqueue(conn, kind="work", key="job-2", payload={})
    assert w.run_once(key="job-2").key == "job-2"
    assert w.run_once(key="job-2") is None
    assert seen == ["job-2"]


class NoSandboxNow(Exception):
    """A failure that says how long to wait (as a gate's "no sandbox could start" does)."""

    retry_after_s = 2.0


def waits_until_dead(svc, error: Exception) -> list[float]:
    """The wait the queue chose after each failed attempt of a job that always raises
    ``error`` (read from the row: run_after - updated_at, both the store's clock), the
    job made runnable again at once each time (no sleeping); ends when it is dead."""
    def fails(job):
        raise error

    q = SqlJobQueue(svc.store, lease_s=30, backoff_s=2.0, max_attempts=6)
    with svc.store.tx() as conn:
        q.enqueue(conn, kind="work", key="job-1", payload={})
    w = Worker(q, {"work": fails}, owner="w", poll_s=0.01, lease_s=30)
    waits = []
    while w.run_once() is not None and job_row(q)["state"] == "queued":
        row = job_row(q)
        waits.append(round((row["run_after"] - row["updated_at"]).total_seconds(), 3))
        with svc.store.tx() as conn:
            conn.execute(update(jobs).values(run_after=db_now(conn)))
    assert (job_row(q)["state"], job_row(q)["attempts"]) == ("dead", 6)
    return waits


def test_a_failure_that_says_how_long_to_wait_is_retried_after_that_not_the_backoff(svc):
    """No sandbox could start: the queue's backoff waited 2, 4, 8, 16 and 32 s (~62 s
    before the fifth retry ran, a decision stalled a minute or more); a failure carrying
    ``retry_after_s`` waits its own 2 s each time, and still spends its attempts."""
    assert waits_until_dead(svc, ConnectionError("MLflow did not answer")) == [
        2.0, 4.0, 8.0, 16.0, 32.0]
    with svc.store.tx() as conn:  # the next job, same key
        conn.execute(delete(jobs))
    assert waits_until_dead(svc, NoSandboxNow("a sandbox could not start")) == [2.0] * 5
