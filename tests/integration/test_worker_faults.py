"""kill -9 a worker mid-job: another worker reclaims the lease and the job completes once."""

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from tests.support.waiting import wait_for
from webhook_server.jobs.queue import SqlJobQueue
from webhook_server.store.schema import jobs

pytestmark = pytest.mark.integration
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def spawn(db_url, log, seconds, lease):
    return subprocess.Popen([sys.executable, "-m", "tests.support.slow_worker", db_url,
                             str(log), str(seconds), str(lease)], cwd=ROOT)


def lines(log):
    return log.read_text().splitlines() if log.exists() else []


def job_row(svc, state):
    with svc.store.tx() as conn:
        row = conn.execute(select(jobs).where(jobs.c.key == "slow-1")).mappings().one()
    return row if row["state"] == state else None


def test_a_killed_worker_job_is_reclaimed_and_completed_exactly_once(svc, db_url, tmp_path):
    queue = SqlJobQueue(svc.store)
    with svc.store.tx() as conn:
        queue.enqueue(conn, kind="slow", key="slow-1", payload={}, lock_key="model:churn")
    log = tmp_path / "jobs.log"
    first = spawn(db_url, log, seconds=30, lease=1.0)
    try:
        wait_for(lambda: any(x.startswith("started") for x in lines(log)), 30, "first start")
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        second = spawn(db_url, log, seconds=0.2, lease=1.0)
        try:
            row = wait_for(lambda: job_row(svc, "done"), 30, "the job marked done")
            assert time.monotonic() - killed_at >= 0.5  # not before the lease could expire
            assert row["attempts"] == 2
        finally:
            second.send_signal(signal.SIGKILL)
            second.wait()
    finally:
        if first.poll() is None:
            first.kill()
    done = [x for x in lines(log) if x.startswith("completed")]
    assert done == [f"completed {second.pid}"]
    assert [x for x in lines(log) if x.startswith("started")] == [
        f"started {first.pid}", f"started {second.pid}"]
