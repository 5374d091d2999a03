"""The doorbell wakes an idle worker when a job is committed, never before the commit and
never for a transaction that rolled back; without it (or with it broken) workers poll."""

import os
import threading
import time

import pytest

from tests.support.waiting import wait_for
from webhook_server.jobs.doorbell import Doorbell, directory_for
from webhook_server.jobs.queue import SqlJobQueue
from webhook_server.jobs.worker import Worker
from webhook_server.store import Store


@pytest.fixture
def bell(tmp_path):
    bell = Doorbell(tmp_path / "wake")
    yield bell
    bell.close()


def test_nobody_waiting_means_nobody_rung(bell):
    assert bell.ring() == 0


def test_a_ring_wakes_a_waiting_process_before_its_timeout(bell, tmp_path):
    assert bell.wait(0.01) is False  # binds the socket; nothing rang
    ringer = Doorbell(tmp_path / "wake")
    started = time.monotonic()
    threading.Timer(0.05, ringer.ring).start()
    assert bell.wait(30) is True
    assert time.monotonic() - started < 10
    assert bell.wait(0.01) is False  # the ring was consumed: no second wake


def test_a_socket_left_by_a_dead_worker_is_removed_by_the_next_ring(bell, tmp_path):
    import socket

    directory = tmp_path / "wake"
    directory.mkdir(mode=0o700)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(directory / "1-dead.sock"))
    dead.close()  # the file stays, nobody reads it
    assert bell.ring() == 0
    assert os.listdir(directory) == []


def test_the_directory_is_private_and_named_by_a_digest_of_the_store(bell, tmp_path):
    bell.wait(0.01)
    assert (tmp_path / "wake").stat().st_mode & 0o077 == 0
    name = directory_for("postgresql://podium:s3cret@db/podium").name
    assert "s3cret" not in name and name == directory_for(
        "postgresql://podium:s3cret@db/podium").name


def test_a_job_rings_after_its_commit_and_a_rolled_back_one_never(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    store.migrate()
    rings = []

    class Recorder:
        def ring(self):
            with store.read() as conn:  # what a woken worker would see
                rings.append(conn.exec_driver_sql("select count(*) from jobs").scalar())

    queue = SqlJobQueue(store, doorbell=Recorder())
    with store.tx() as conn:
        queue.enqueue(conn, kind="k", key="a", payload={})
        assert rings == []  # not before the commit
    assert rings == [1]
    with pytest.raises(RuntimeError), store.tx() as conn:
        queue.enqueue(conn, kind="k", key="b", payload={})
        raise RuntimeError("rolled back")
    with store.tx() as conn:  # the same pooled connection: no hook left over from b
        conn.exec_driver_sql("select 1")
    assert rings == [1]
    with store.tx() as conn:  # a duplicate key adds nothing: nothing to wake for
        queue.enqueue(conn, kind="k", key="a", payload={})
    with store.tx() as conn:  # a delayed job is the poll's
        queue.enqueue(conn, kind="k", key="c", payload={}, delay_s=60)
    assert rings == [1]
    store.dispose()


def test_an_idle_worker_starts_a_job_at_once_not_at_its_next_poll(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    store.migrate()
    bell = Doorbell(tmp_path / "wake")
    queue = SqlJobQueue(store, doorbell=bell)
    ran = threading.Event()
    worker = Worker(queue, {"k": lambda job: ran.set()}, poll_s=600, lease_s=30)
    worker.doorbell = bell
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: os.path.isdir(tmp_path / "wake") and os.listdir(tmp_path / "wake"),
                 what="the worker waiting on its doorbell", poll=0.01)
        with store.tx() as conn:
            queue.enqueue(conn, kind="k", key="now", payload={})
        assert ran.wait(30), "a 600 s poll: only the doorbell can have woken the worker"
    finally:
        stop.set()
        bell.ring()
        thread.join(10)
        bell.close()
        store.dispose()


def test_the_last_waiter_to_leave_removes_the_stores_directory(tmp_path):
    """One directory per store URL: left behind empty, a test suite's temp directory filled
    with one per test that ran a worker."""
    first, second = Doorbell(tmp_path / "wake"), Doorbell(tmp_path / "wake")
    first.wait(0.01)
    second.wait(0.01)
    first.close()
    assert (tmp_path / "wake").is_dir()  # the other still waits there, and is rung
    assert Doorbell(tmp_path / "wake").ring() == 1
    second.close()
    assert not (tmp_path / "wake").exists()


def test_a_waiter_arriving_after_the_directory_went_binds_in_a_new_one(tmp_path):
    first = Doorbell(tmp_path / "wake")
    first.wait(0.01)
    first.close()
    assert not (tmp_path / "wake").exists()
    again = Doorbell(tmp_path / "wake")
    try:
        assert again.wait(0.01) is False  # bound (not broken): a ring reaches it
        assert Doorbell(tmp_path / "wake").ring() == 1
    finally:
        again.close()
