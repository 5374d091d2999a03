"""Leases with fencing: a heartbeat that hiccups keeps the lease; a worker that lost its lease
stops at its next ``fence()`` and records nothing; the new owner runs the job exactly once.

No test sleeps and hopes: a lease "running out" is its expiry moved into the past (the worker
is stalled on an event meanwhile), and waits are on observable conditions."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from webhook_server.jobs.queue import DONE, RUNNING, Job, SqlJobQueue, list_jobs
from webhook_server.jobs.worker import LeaseLost, Worker
from webhook_server.store.schema import jobs, utcnow

KEY = "job-1"


class SpyQueue(SqlJobQueue):
    """The SQL queue, recording who completed or failed what, and what heartbeats answered.
    ``heartbeat_faults``: how many of the first heartbeats raise (a database hiccup)."""

    def __init__(self, store, *, heartbeat_faults: int = 0, **kw) -> None:
        super().__init__(store, backoff_s=0, **kw)
        self.outcomes: list[tuple[str, str]] = []
        self.beats: list[bool | str] = []
        self.heartbeat_faults = heartbeat_faults

    def heartbeat(self, job):
        if len(self.beats) < self.heartbeat_faults:
            self.beats.append("raised")
            raise ConnectionError("the database is restarting")
        held = super().heartbeat(job)
        self.beats.append(held)
        return held

    def complete(self, job):
        self.outcomes.append(("complete", job.lease_owner))
        return super().complete(job)

    def fail(self, job, error, *, permanent=False, delay_s=None):
        self.outcomes.append(("fail", job.lease_owner))
        return super().fail(job, error, permanent=permanent, delay_s=delay_s)


def wait_for(condition, timeout_s: float = 1.5) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def enqueue(q: SqlJobQueue, key: str = KEY) -> None:
    with q.store.tx() as conn:
        q.enqueue(conn, kind="work", key=key, payload={"x": 1})


def row(q: SqlJobQueue, key: str = KEY) -> dict:
    with q.store.read() as conn:
        return {j["key"]: j for j in list_jobs(conn)}[key]


def expire(q: SqlJobQueue, key: str = KEY) -> None:
    """The lease runs out (its worker stalled): move the expiry into the past."""
    with q.store.tx() as conn:
        conn.execute(update(jobs).where(jobs.c.key == key)
                     .values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def start(worker: Worker) -> threading.Thread:
    t = threading.Thread(target=worker.run_once, daemon=True)
    t.start()
    return t


def test_a_heartbeat_that_raises_once_keeps_the_lease_and_the_job_runs_once(svc):
    """Lease 0.3 s, beat every 0.1 s, the first beat raises: the handler runs past 0.4 s
    (the lease had expired without the later beats) and nobody else can take the job."""
    q = SpyQueue(svc.store, lease_s=0.3, heartbeat_faults=1)
    enqueue(q)
    runs, checks = [], []

    def slow(job):
        runs.append(job.lease_owner)
        claimed = time.monotonic()
        wait_for(lambda: q.beats.count(True) >= 3 and time.monotonic() - claimed > 0.4)
        job.fence()  # still ours
        checks.append((q.reap(), q.claim("w2")))

    Worker(q, {"work": slow}, owner="w1", lease_s=0.3).run_once()
    assert q.beats[0] == "raised" and runs == ["w1"]
    assert checks == [(0, None)]
    assert q.outcomes == [("complete", "w1")]
    assert (row(q)["state"], row(q)["attempts"]) == (DONE, 1)
    assert Worker(q, {"work": slow}, owner="w2").run_once() is None


def test_a_worker_that_lost_its_lease_stops_at_its_next_fence_and_the_new_owner_runs_once(
        svc, caplog):
    q = SpyQueue(svc.store, lease_s=30)
    enqueue(q)
    effects, stalled, go = [], threading.Event(), threading.Event()

    def handler(job):
        if job.lease_owner == "w1":  # w1 stalls (a GC pause, a hung call) past its lease
            stalled.set()
            go.wait(5)
        job.fence()
        effects.append(job.lease_owner)

    w1 = start(Worker(q, {"work": handler}, owner="w1", lease_s=30))
    assert stalled.wait(5)
    expire(q)
    assert q.reap() == 1
    second = Worker(q, {"work": handler}, owner="w2", lease_s=30).run_once()
    assert (second.lease_owner, second.attempts) == ("w2", 2)
    with caplog.at_level(logging.WARNING, logger="webhook_server.jobs.worker"):
        go.set()
        w1.join(5)
    assert not w1.is_alive()
    assert effects == ["w2"]  # w1 stopped before its effect
    assert q.outcomes == [("complete", "w2")]  # w1 neither completed nor failed
    assert (row(q)["state"], row(q)["attempts"]) == (DONE, 2)
    assert "another worker runs it" in caplog.text


def test_an_expired_lease_fences_even_before_the_reaper_hands_the_job_on(svc):
    q = SpyQueue(svc.store, lease_s=30)
    enqueue(q)
    effects, stalled, go = [], threading.Event(), threading.Event()

    def handler(job):
        stalled.set()
        go.wait(5)
        job.fence()
        effects.append(job.lease_owner)

    w1 = start(Worker(q, {"work": handler}, owner="w1", lease_s=30))
    assert stalled.wait(5)
    expire(q)  # not reaped yet: a reaper may be handing it on right now
    go.set()
    w1.join(5)
    assert effects == [] and q.outcomes == []
    assert row(q)["state"] == RUNNING  # the reaper returns it to the queue
    assert q.reap() == 1


def test_the_fence_trusts_a_heartbeat_that_saw_the_lease_go(svc):
    """Once a renewal was refused the lease is lost for good, whatever a later read says."""

    class StoreSaysHeld(SpyQueue):
        def holds(self, job):
            return True

    q = StoreSaysHeld(svc.store, lease_s=0.15)
    enqueue(q)
    effects, stalled, go = [], threading.Event(), threading.Event()

    def handler(job):
        stalled.set()
        go.wait(5)
        job.fence()
        effects.append(job.lease_owner)

    w1 = start(Worker(q, {"work": handler}, owner="w1", lease_s=0.15))
    assert stalled.wait(5)
    with q.store.tx() as conn:  # another worker took the job over
        conn.execute(update(jobs).where(jobs.c.key == KEY).values(lease_owner="w2"))
    wait_for(lambda: False in q.beats)
    go.set()
    w1.join(5)
    assert effects == [] and q.outcomes == []


def test_holds_is_true_only_for_the_live_owner(svc):
    q = SqlJobQueue(svc.store, lease_s=30)
    enqueue(q)
    job = q.claim("w1")
    assert q.holds(job)
    with q.store.tx() as conn:
        conn.execute(update(jobs).where(jobs.c.key == KEY).values(lease_owner="w2"))
    assert not q.holds(job)
    with q.store.tx() as conn:
        conn.execute(update(jobs).where(jobs.c.key == KEY).values(lease_owner="w1"))
    assert q.holds(job)
    expire(q)
    assert not q.holds(job)
    q.heartbeat(job)  # nobody reaped it: the owner may renew
    assert q.holds(job)
    assert q.complete(job) and not q.holds(job)


def test_a_job_built_outside_a_worker_has_no_fence_and_the_fence_is_not_part_of_its_value():
    job = Job(1, "k", "work", {}, 1, 6, "test")
    assert job.fence is None
    assert job == Job(1, "k", "work", {}, 1, 6, "test", fence=lambda: None)


def test_the_handler_sees_a_fence_that_raises_leaselost(svc):
    q = SqlJobQueue(svc.store, lease_s=30)
    enqueue(q)
    raised = []

    def handler(job):
        job.fence()
        with q.store.tx() as conn:
            conn.execute(update(jobs).where(jobs.c.key == KEY).values(lease_owner="w2"))
        with pytest.raises(LeaseLost):
            job.fence()
        raised.append(True)

    Worker(q, {"work": handler}, owner="w1", lease_s=30).run_once()
    assert raised == [True] and row(q)["state"] == RUNNING  # w1 recorded nothing
