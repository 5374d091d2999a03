"""The scheduler runs in exactly one process across nodes: the holder of a lease in the
store, renewed; a holder that lost it stops firing (fenced, even before its next turn
notices); a killed holder is replaced within one lease, a paused one never fires again
after its successor started. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import update

from tests.support.waiting import wait_for
from webhook_server.jobs.leader import LEASE, LeasedScheduler
from webhook_server.store.schema import leases, utcnow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
TTL_S = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def candidate(svc, owner: str, clock=None, ttl_s: float = 30) -> LeasedScheduler:
    fired = []

    def build():
        sched = BackgroundScheduler(timezone="UTC")
        sched.add_job(fired.append, "interval", hours=1, args=(owner,), id="trigger")
        return sched

    leader = LeasedScheduler(svc.store, build, owner=owner, ttl_s=ttl_s,
                             **({"clock": clock} if clock else {}))
    leader.fired_by = fired
    return leader


def fire(leader: LeasedScheduler) -> None:
    """What APScheduler does when the trigger is due."""
    leader._sched.get_job("trigger").func(leader.owner)


def test_of_two_candidates_exactly_one_runs_the_scheduler(svc):
    a, b = candidate(svc, "a"), candidate(svc, "b")
    try:
        assert (a.step(), b.step()) == (True, False)
        assert (a.step(), b.step()) == (True, False)  # renewed, still refused
        a.close()  # a clean stop gives the lease up: b takes it at once
        assert b.step() is True
    finally:
        a.close()
        b.close()


def test_a_holder_whose_scheduler_cannot_start_gives_the_lease_up_and_tries_again(svc):
    """A scheduler that fails to start (a trigger that cannot be built) must not leave the
    lease held by a process that fires nothing, nor end the candidate's loop."""
    attempts = []

    def build():
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("cannot build a trigger")
        return BackgroundScheduler(timezone="UTC")

    a = LeasedScheduler(svc.store, build, owner="a", ttl_s=30)
    b = candidate(svc, "b")
    try:
        assert a.step() is False and not a.leading
        assert b.step() is True  # the lease was given up: another candidate takes it
        b.close()
        assert a.step() is True and a.leading
    finally:
        a.close()
        b.close()


def test_a_holder_whose_lease_was_taken_is_fenced_then_stops(svc):
    clock = Clock()
    a, b = candidate(svc, "a", clock), candidate(svc, "b")
    try:
        assert a.step() is True
        fire(a)
        assert a.fired_by == ["a"]
        clock.now += 31  # a stalls past its lease; meanwhile it ran out and b took it
        with svc.store.tx() as conn:
            conn.execute(update(leases).values(expires_at=utcnow() - timedelta(seconds=1)))
        assert b.step() is True
        fire(a)  # a's trigger comes due before a's next turn
        assert (a.fired_by, a.fenced) == (["a"], 1)
        assert a.step() is False and not a.leading  # renewal refused: the scheduler stops
        fire(b)
        assert b.fired_by == ["b"]
    finally:
        a.close()
        b.close()


def test_a_holder_fires_only_while_the_store_says_the_lease_is_its_own(svc):
    a = candidate(svc, "a")
    try:
        assert a.step() is True
        with svc.store.tx() as conn:  # e.g. a's clock is behind: b took an expired lease
            conn.execute(update(leases).where(leases.c.name == LEASE).values(owner="b"))
        fire(a)
        assert (a.fired_by, a.fenced) == ([], 1)
    finally:
        a.close()


def spawn(db_url: str, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.unit.jobs.leader_child", db_url,
                             str(log), str(TTL_S)], cwd=ROOT)


def events(log) -> list[tuple[str, int, float]]:
    if not log.exists():
        return []
    return [(w, int(p), float(t)) for w, p, t in
            (line.split() for line in log.read_text().splitlines() if line.count(" ") == 2)]


def firing(log, pid: int, after: float = 0.0) -> float | None:
    """When ``pid`` first fired after ``after`` (CLOCK_MONOTONIC), or None."""
    return next((t for w, p, t in events(log) if w == "fire" and p == pid and t > after), None)


@pytest.fixture
def two_candidates(svc, db_url, tmp_path):
    log = tmp_path / "leader.log"
    procs = [spawn(db_url, log), spawn(db_url, log)]
    try:
        leader = wait_for(lambda: next((p for w, p, _ in events(log) if w == "lead"), None),
                          30, "one candidate to take the lease")
        holder = next(p for p in procs if p.pid == leader)
        standby = next(p for p in procs if p.pid != leader)
        wait_for(lambda: firing(log, holder.pid), 10, "the holder to fire")
        yield log, holder, standby
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
            p.wait()


def test_a_killed_holder_is_replaced_within_one_lease(two_candidates):
    log, holder, standby = two_candidates
    assert firing(log, standby.pid) is None  # never both
    holder.kill()
    killed_at = time.monotonic()
    holder.wait()
    took_over = wait_for(lambda: firing(log, standby.pid), 4 * TTL_S,
                         "the standby to fire")
    assert took_over - killed_at <= TTL_S * 1.1 + 0.5  # a tenth: its turn; 0.5 s: the trigger


def test_a_paused_holder_never_fires_after_its_successor_started(two_candidates):
    log, holder, standby = two_candidates
    os.kill(holder.pid, signal.SIGSTOP)  # a stall longer than the lease
    took_over = wait_for(lambda: firing(log, standby.pid), 4 * TTL_S, "the standby to fire")
    # the clock is read before the holder may run again: woken, it can renew, find the
    # lease gone and write "lost" before this process is scheduled again (CI saw it)
    resumed = time.monotonic()
    os.kill(holder.pid, signal.SIGCONT)
    wait_for(lambda: any(w == "lost" and p == holder.pid and t > resumed
                         for w, p, t in events(log)), 10, "the old holder to stop")
    assert firing(log, holder.pid, after=took_over) is None
    wait_for(lambda: firing(log, standby.pid, after=resumed), 4 * TTL_S,
             "the successor to go on firing")  # its next tick, not already
