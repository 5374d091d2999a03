"""APScheduler fires the periodic triggers. Each trigger only inserts a keyed job row, so
a trigger fired twice (two schedulers, a restart) changes nothing."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from webhook_server.jobs.queue import JobQueue
from webhook_server.store import Store

log = logging.getLogger(__name__)


def enqueue_reconcile(store: Store, queue: JobQueue, interval_s: int,
                      now: float | None = None) -> bool:
    bucket = int((time.time() if now is None else now) // interval_s)
    with store.tx() as conn:
        return queue.enqueue(conn, kind="reconcile", key=f"reconcile:{bucket}", payload={})


PRUNE_EVERY_S = 24 * 3600


def enqueue_prune(store: Store, queue: JobQueue, older_than_days: int,
                  now: float | None = None) -> bool:
    """One ``prune`` job a day (``prune:<day>``), however often the trigger fires."""
    day = int((time.time() if now is None else now) // PRUNE_EVERY_S)
    with store.tx() as conn:
        return queue.enqueue(conn, kind="prune", key=f"prune:{day}",
                             payload={"older_than_days": older_than_days})


def build_scheduler(store: Store, queue: JobQueue, *, reconcile_interval_s: int | None,
                    reap_interval_s: float,
                    prune_after_days: int = 0) -> BackgroundScheduler:
    """``reconcile_interval_s=None`` leaves reconciliation out (no registry configured);
    ``prune_after_days`` (PODIUM_PRUNE_AFTER_DAYS, 0: off) adds a daily prune."""
    sched = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True,
                                                              "max_instances": 1})
    if reconcile_interval_s:
        sched.add_job(enqueue_reconcile, "interval", seconds=reconcile_interval_s,
                      args=(store, queue, reconcile_interval_s), id="reconcile",
                      next_run_time=datetime.now(UTC))
    sched.add_job(queue.reap, "interval", seconds=reap_interval_s, id="reap-leases")
    if prune_after_days:
        sched.add_job(enqueue_prune, "interval", seconds=3600, id="prune",
                      args=(store, queue, prune_after_days), next_run_time=datetime.now(UTC))
    return sched
