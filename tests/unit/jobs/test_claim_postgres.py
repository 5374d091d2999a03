"""Claiming on PostgreSQL: ``FOR UPDATE SKIP LOCKED`` picks and leases in one statement; a
row another claimer holds is skipped, not waited for; and one running job per model holds
across processes, by the database alone."""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, text, update

from tests.support.waiting import wait_for
from webhook_server.jobs.queue import DONE, QUEUED, RUNNING, SqlJobQueue, list_jobs
from webhook_server.jobs.worker import Worker
from webhook_server.store import Store
from webhook_server.store.schema import jobs, utcnow

pytestmark = pytest.mark.postgres
HANDLER_S = 0.03  # long enough that two runs of one model would overlap if they could


def add(q: SqlJobQueue, key: str, lock: str | None = None) -> None:
    with q.store.tx() as conn:
        q.enqueue(conn, kind="race", key=key, payload={"lock": lock}, lock_key=lock)


def claim_soon(q: SqlJobQueue, owner: str, timeout_s: float = 10):
    """``q.claim`` in a thread: a claim that waits on a lock fails the test, not hangs it."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(q.claim, owner).result(timeout=timeout_s)


def test_claim_skips_a_job_another_transaction_has_locked_instead_of_waiting(pg_store):
    q = SqlJobQueue(pg_store, lease_s=30)
    add(q, "first")
    add(q, "second")
    with pg_store.engine.connect() as other, other.begin():
        other.execute(select(jobs.c.id).where(jobs.c.key == "first").with_for_update())
        job = claim_soon(q, "w1")  # another claimer mid-transaction holds "first"
        assert job.key == "second"
    assert claim_soon(q, "w2").key == "first"  # released with that transaction


def test_a_claim_that_collides_on_the_model_lock_retries_and_takes_another_model(pg_store):
    """Two claimers pick two jobs of one model at the same moment: the second one's lease
    waits for the first's commit, fails on the running-lock index, and the claim retries."""
    q = SqlJobQueue(pg_store, lease_s=30)
    add(q, "a1", "model:a")
    add(q, "a2", "model:a")
    add(q, "b1", "model:b")
    with pg_store.engine.connect() as first:
        tx = first.begin()  # a claimer that leased a1 and has not committed yet
        first.execute(update(jobs).where(jobs.c.key == "a1").values(
            state=RUNNING, lease_owner="w1", lease_expires_at=utcnow()))
        with ThreadPoolExecutor(1) as pool:
            second = pool.submit(q.claim, "w2")  # skips locked a1, picks a2: must wait

            def waiting_on_a_lock():
                with pg_store.engine.connect() as conn:
                    return conn.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                        "'Lock' AND query LIKE 'WITH picked%'")).scalar() > 0

            wait_for(waiting_on_a_lock, 10, "the second claim to wait on the first's lease")
            tx.commit()
            job = second.result(timeout=10)
    assert job.key == "b1"
    with pg_store.read() as conn:
        states = {j["key"]: j["state"] for j in list_jobs(conn)}
    assert states == {"a1": RUNNING, "a2": QUEUED, "b1": RUNNING}


def _race(url: str, log_path: str, threads: int) -> None:
    """A worker process: ``threads`` workers until no job is left queued or running."""
    store = Store(url)
    queue = SqlJobQueue(store, lease_s=30, backoff_s=0)
    lock = threading.Lock()

    def handler(job) -> None:
        start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process here
        time.sleep(HANDLER_S)
        with lock, open(log_path, "a") as log:
            log.write(f"{job.key} {job.payload['lock']} {start:.6f} {time.monotonic():.6f}\n")

    def loop() -> None:
        worker = Worker(queue, {"race": handler}, poll_s=0.005, lease_s=30)
        while True:
            if worker.run_once() is None:
                with store.read() as conn:
                    left = conn.execute(select(jobs.c.id).where(
                        jobs.c.state.in_((QUEUED, RUNNING)))).first()
                if left is None:
                    return
                time.sleep(0.005)

    runners = [threading.Thread(target=loop) for _ in range(threads)]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    store.dispose()


def test_workers_in_three_processes_never_run_two_jobs_of_one_model_at_once(pg_store, pg_url,
                                                                          tmp_path):
    q = SqlJobQueue(pg_store, lease_s=30)
    for i in range(10):
        for model in ("a", "b", "c"):
            add(q, f"{model}{i}", f"model:{model}")
    log = tmp_path / "runs.log"
    log.touch()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_race, args=(pg_url, str(log), 2)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    runs = [line.split() for line in log.read_text().splitlines()]
    assert sorted(r[0] for r in runs) == sorted(f"{m}{i}" for i in range(10) for m in "abc")
    by_model: dict[str, list[tuple[float, float]]] = {}
    for _key, lock, start, end in runs:
        by_model.setdefault(lock, []).append((float(start), float(end)))
    for lock, spans in by_model.items():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= end, f"two jobs of {lock} ran at the same time"
    every = sorted((s, e, lock) for lock, spans in by_model.items() for s, e in spans)
    assert any(b[0] < a[1] and a[2] != b[2] for a, b in zip(every, every[1:], strict=False)), \
        "no two models ever ran at once: the workers did not race"
    with pg_store.read() as conn:
        rows = list_jobs(conn)
    assert {(r["state"], r["attempts"]) for r in rows} == {(DONE, 1)}
