"""The worker loop: outcomes of handlers, leases kept alive while a job runs."""

import threading
import time

from webhook_server.jobs.queue import SqlJobQueue, list_jobs
from webhook_server.jobs.worker import PermanentJobError, Worker


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
