"""LISTEN/NOTIFY on PostgreSQL: a job committed by any process wakes idle workers at once
(their 30 s poll would be far too late), a rolled-back one wakes nobody, and a listener whose
session is killed comes back by itself."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text

from tests.support.waiting import wait_for
from webhook_server.jobs.listen import PgWakeup
from webhook_server.jobs.queue import SqlJobQueue
from webhook_server.jobs.worker import Worker

pytestmark = pytest.mark.postgres
POLL_S = 30.0  # a worker that wakes well before this was woken by the notification
ENQUEUE = """
import sys
from webhook_server.jobs.queue import SqlJobQueue
from webhook_server.store import Store
store = Store(sys.argv[1])
with store.tx() as conn:
    SqlJobQueue(store).enqueue(conn, kind="k", key=sys.argv[2], payload={})
store.dispose()
"""


class SpyWakeup(PgWakeup):
    """Sets ``idle`` when a worker starts waiting with no notification pending for it."""

    idle = threading.Event()

    def wait(self, timeout: float) -> bool:
        with self._cond:
            pending = getattr(self._seen, "count", self._rung) != self._rung
        if not pending:
            self.idle.set()
        try:
            return super().wait(timeout)
        finally:
            self.idle.clear()


def listening(wake: PgWakeup) -> None:
    wake.wait(0.01)  # starts the listening thread
    assert wake.connected.wait(15), "the listener never connected"
    wake.wait(0)  # take the wake-up every (re)connection gives


def test_a_job_enqueued_by_another_process_wakes_a_waiting_worker_long_before_its_poll(
        pg_store, pg_url):
    wake = SpyWakeup.for_engine(pg_store.engine)
    wake.idle = threading.Event()
    queue = SqlJobQueue(pg_store, doorbell=wake)
    ran = threading.Event()
    worker = Worker(queue, {"k": lambda job: ran.set()}, poll_s=POLL_S, lease_s=30,
                    doorbell=wake)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert wake.connected.wait(60), "the listener never connected"
        wake.idle.clear()
        assert wake.idle.wait(60), "the worker never went idle"
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", ENQUEUE, pg_url, "from-elsewhere"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert ran.wait(POLL_S - 10), "only a notification can wake a worker polling every 30 s"
        assert time.monotonic() - started < POLL_S / 2
    finally:
        stop.set()
        wake.close()
        thread.join(10)


def test_a_rolled_back_job_or_another_schemas_wakes_nobody_and_a_committed_one_does(
        pg_store):
    wake = PgWakeup.for_engine(pg_store.engine)
    queue = SqlJobQueue(pg_store)
    try:
        listening(wake)
        with pytest.raises(RuntimeError), pg_store.tx() as conn:
            queue.enqueue(conn, kind="k", key="rolled-back", payload={})
            raise RuntimeError("rolled back")
        with pg_store.tx() as conn:  # a delayed job is the poll's business
            queue.enqueue(conn, kind="k", key="later", payload={}, delay_s=60)
        with pg_store.tx() as conn:  # a Podium in another schema of the same database
            conn.execute(text("SELECT pg_notify('podium_jobs', 'another_schema')"))
        assert wake.wait(1.0) is False
        with pg_store.tx() as conn:
            queue.enqueue(conn, kind="k", key="committed", payload={})
        assert wake.wait(15) is True
    finally:
        wake.close()


def test_a_listener_whose_session_is_terminated_reconnects_and_hears_again(pg_store):
    wake = PgWakeup.for_engine(pg_store.engine)
    queue = SqlJobQueue(pg_store)
    try:
        listening(wake)
        first = wake.backend_pid
        with pg_store.engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        wait_for(lambda: wake.connected.is_set() and wake.backend_pid != first, 15,
                 "the listener to reconnect")
        wake.wait(0)
        with pg_store.tx() as conn:
            queue.enqueue(conn, kind="k", key="after", payload={})
        assert wake.wait(15) is True
    finally:
        wake.close()
