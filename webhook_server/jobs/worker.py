"""The worker loop: claim a job, keep its lease alive, run its handler, record the outcome.

The handler gets the job with a ``fence``: it raises ``LeaseLost`` once this worker no longer
holds the lease (the heartbeat saw it go, or the store says so), so a worker that stalled
past its lease stops before its next external effect instead of racing the new owner.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from webhook_server import contract
from webhook_server.core import logs, tracing
from webhook_server.jobs.doorbell import Doorbell
from webhook_server.jobs.listen import PgWakeup
from webhook_server.jobs.queue import Job, JobQueue
from webhook_server.store import Store, leases

log = logging.getLogger(__name__)
Handler = Callable[[Job], None]


class PermanentJobError(Exception):
    """Retrying will not help (bad input, missing version): the job goes to ``dead``."""


class DeferJob(Exception):
    """Not now (another request holds the model): run again later, no attempt spent."""

    delay_s = 5.0


def retry_after(exc: BaseException) -> float | None:
    """How long a failure asks the job to wait before its next attempt (its
    ``retry_after_s``: no sandbox could start on this machine now, so a short wait, not the
    queue's exponential backoff, which doubles past a minute by the fifth try); None: the
    backoff."""
    value = getattr(exc, "retry_after_s", None)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


class LeaseLost(Exception):
    """This worker no longer holds the job's lease: another worker owns the job (or will,
    once the reaper sees the lease expired), so this one must not touch anything for it."""


class Lease:
    """What this worker knows about its lease on one job. Lost is final: set by the
    heartbeat when a renewal is refused, or by ``fence`` when the store says so."""

    def __init__(self, queue: JobQueue, job: Job) -> None:
        self.queue, self.job = queue, job
        self.lost = threading.Event()

    def fence(self) -> None:
        """Raise ``LeaseLost`` unless the lease is still ours (one read per call)."""
        if self.lost.is_set() or not self.queue.holds(self.job):
            self.lost.set()
            raise LeaseLost(f"lease on job {self.job.key} lost by {self.job.lease_owner}")


def run_heartbeat(store: Store, owner: str, stop: threading.Event, ttl_s: float = 30) -> None:
    """Keep this worker process's heartbeat row (``leases``: ``worker:<owner>``) alive
    every ttl/3 until ``stop``; then delete it. ``/metrics`` counts the live rows
    (``podium_workers``): zero is the alert "no worker heartbeat". Rows of processes that
    died are deleted a day after they ran out."""
    name = contract.worker_lease(owner)
    while True:
        try:
            with store.tx() as conn:
                leases.acquire(conn, name, owner, ttl_s)
                leases.drop_expired(conn, contract.WORKER_LEASE_PREFIX, 86400)
        except Exception:  # the store is down: the row runs out, the alert says so
            log.warning("worker heartbeat of %s failed; retrying", owner, exc_info=True)
        if stop.wait(ttl_s / 3):
            break
    try:
        with store.tx() as conn:
            leases.release(conn, name, owner)
    except Exception:
        log.warning("could not remove the heartbeat row of %s", owner, exc_info=True)


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(self, queue: JobQueue, handlers: dict[str, Handler], *,
                 owner: str | None = None, poll_s: float = 0.5, lease_s: float = 60,
                 reap_every_s: float | None = None,
                 doorbell: Doorbell | PgWakeup | None = None) -> None:
        """``doorbell``: an idle worker wakes when a job is committed instead of at its next
        poll (``doorbell.py`` on one machine, ``listen.py`` on PostgreSQL); the poll stays
        as the fallback."""
        self.queue = queue
        self.doorbell = doorbell
        self.handlers = handlers
        self.owner = owner or default_owner()
        self.poll_s = poll_s
        self.heartbeat_s = max(lease_s / 3, 0.05)
        self.reap_every_s = reap_every_s if reap_every_s is not None else lease_s / 2
        self._last_reap = 0.0

    def run_once(self, *, key: str | None = None) -> Job | None:
        """Claim and run at most one job (only the job ``key`` when given). Returns the job
        that ran, if any."""
        now = time.monotonic()
        if now - self._last_reap >= self.reap_every_s:
            self._last_reap = now
            if reaped := self.queue.reap():
                log.warning("returned %d job(s) with expired leases to the queue", reaped)
        job = self.queue.claim(self.owner, key=key)
        if job is None:
            return None
        lease = Lease(self.queue, job)
        job = replace(job, fence=lease.fence)
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(lease, stop), daemon=True,
                                name=f"heartbeat-{job.id}")
        beat.start()
        try:
            self._traced(job)
        finally:
            stop.set()
            beat.join()
        return job

    def _traced(self, job: Job) -> None:
        """Run the job inside its span (a child of the span that queued it, in whichever
        process) with its ids on every log line."""
        request_id = job.payload.get("request_id")
        with logs.bind(job_id=job.id, job_kind=job.kind, request_id=request_id,
                       model=job.payload.get("model")), \
                tracing.span(f"job {job.kind}", kind="consumer",
                             parent=tracing.extract(job.trace_context),
                             attributes=tracing.attrs(request_id=request_id, job_id=job.id,
                                                      job_key=job.key,
                                                      attempt=job.attempts)):
            self._run(job)

    def _run(self, job: Job) -> None:
        started = time.monotonic()
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise PermanentJobError(f"no handler for job kind {job.kind!r}")
            handler(job)
        except LeaseLost as exc:  # the new owner runs the job: record nothing for it
            log.warning("job %s stopped: %s; another worker runs it", job.key, exc)
        except DeferJob as exc:
            self.queue.defer(job, exc.delay_s, str(exc))
            log.info("job %s deferred: %s", job.key, exc)
        except PermanentJobError as exc:
            self.queue.fail(job, str(exc), permanent=True)
            log.error("job %s failed permanently: %s", job.key, exc)
        except Exception as exc:
            state = self.queue.fail(job, f"{type(exc).__name__}: {exc}",
                                    delay_s=retry_after(exc))
            log.warning("job %s attempt %d failed (%s): %s", job.key, job.attempts, state, exc)
        else:
            if not self.queue.complete(job):
                log.warning("job %s finished after its lease was lost; another worker "
                            "owns it now", job.key)
            else:
                log.info("job %s done in %.0f ms", job.key,
                         (time.monotonic() - started) * 1000)

    def _heartbeat(self, lease: Lease, stop: threading.Event) -> None:
        """Renew every lease/3. A renewal that raises (a database hiccup) is retried sooner,
        never given up: a dead heartbeat would let the lease expire and the job run twice.
        Only a refused renewal (someone else owns the job) ends the beat."""
        wait = self.heartbeat_s
        while not stop.wait(wait):
            try:
                held = self.queue.heartbeat(lease.job)
            except Exception:
                log.warning("heartbeat on job %s failed; retrying", lease.job.key,
                            exc_info=True)
                wait = self.heartbeat_s / 3
                continue
            if not held:
                lease.lost.set()
                log.warning("lost the lease on job %s", lease.job.key)
                return
            wait = self.heartbeat_s

    def run(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.owner)
        while not stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # the store is down: wait and try again, never exit
                log.exception("worker %s could not reach the queue", self.owner)
                ran = None
            if ran is None:
                if self.doorbell is not None:
                    self.doorbell.wait(self.poll_s)
                else:
                    stop.wait(self.poll_s)
        log.info("worker %s stopped", self.owner)
