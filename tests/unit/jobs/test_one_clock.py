"""Issue 25: leases are taken and checked against the database's clock, not the node's.

A node whose clock runs ten minutes ahead (its ``utcnow`` patched wherever the lease code
could read it) must not see a live lease as expired: it cannot take the scheduler's lease,
reap a running job, or claim it a second time. On the old code (node clocks) each of these
happened."""

from __future__ import annotations

from datetime import timedelta

import pytest

from webhook_server.jobs import claim as claim_mod
from webhook_server.jobs import queue as queue_mod
from webhook_server.jobs.queue import RUNNING, SqlJobQueue, list_jobs
from webhook_server.store import Store, leases, schema
from webhook_server.store.clock import db_now

AHEAD = timedelta(minutes=10)


@pytest.fixture
def store(db_url):
    store = Store(db_url)
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture
def clock_ahead(monkeypatch):
    """Make this process a node whose clock runs ten minutes ahead."""
    real = schema.utcnow

    def skewed():
        return real() + AHEAD

    def ahead() -> None:
        for module in (schema, leases, claim_mod, queue_mod):
            monkeypatch.setattr(module, "utcnow", skewed, raising=False)
    return ahead


def test_a_node_whose_clock_runs_ahead_cannot_take_a_live_named_lease(store, clock_ahead):
    with store.tx() as conn:
        assert leases.acquire(conn, "scheduler", "node-a", ttl_s=60)
    clock_ahead()
    with store.tx() as conn:
        assert not leases.acquire(conn, "scheduler", "node-b", ttl_s=60)
        assert leases.holds(conn, "scheduler", "node-a")
        assert leases.renew(conn, "scheduler", "node-a", ttl_s=60)


def test_a_node_whose_clock_runs_ahead_cannot_reap_or_claim_a_live_job(store, clock_ahead):
    q = SqlJobQueue(store, lease_s=60, backoff_s=0)
    with store.tx() as conn:
        q.enqueue(conn, kind="test", key="k1", payload={}, lock_key="churn")
    job = q.claim("node-a")
    assert job is not None
    clock_ahead()
    assert q.reap() == 0
    assert q.claim("node-b") is None
    assert q.holds(job) and q.heartbeat(job)
    with store.read() as conn:
        (row,) = list_jobs(conn)
    assert (row["state"], row["lease_owner"]) == (RUNNING, "node-a")


def test_the_lease_expiry_is_written_with_the_databases_time(store, clock_ahead):
    clock_ahead()
    with store.tx() as conn:
        assert leases.acquire(conn, "scheduler", "node-b", ttl_s=60)
        now = db_now(conn)
        expires = conn.execute(schema.leases.select()).mappings().one()["expires_at"]
    assert timedelta(seconds=59) <= expires - now <= timedelta(seconds=61)


def test_an_expired_lease_is_still_taken_over(store):
    with store.tx() as conn:
        assert leases.acquire(conn, "scheduler", "node-a", ttl_s=60)
        conn.execute(schema.leases.update().values(
            expires_at=db_now(conn) - timedelta(seconds=1)))
    with store.tx() as conn:
        assert leases.acquire(conn, "scheduler", "node-b", ttl_s=60)
