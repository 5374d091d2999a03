"""The worker loop: claim a job, keep its lease alive, run its handler, record the outcome."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from webhook_server.jobs.queue import Job, JobQueue

log = logging.getLogger(__name__)
Handler = Callable[[Job], None]


class PermanentJobError(Exception):
    """Retrying will not help (bad input, missing version): the job goes to ``dead``."""


class DeferJob(Exception):
    """Not now (another request holds the model): run again later, no attempt spent."""

    delay_s = 5.0


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(self, queue: JobQueue, handlers: dict[str, Handler], *,
                 owner: str | None = None, poll_s: float = 0.5, lease_s: float = 60,
                 reap_every_s: float | None = None) -> None:
        self.queue = queue
        self.handlers = handlers
        self.owner = owner or default_owner()
        self.poll_s = poll_s
        self.heartbeat_s = max(lease_s / 3, 0.05)
        self.reap_every_s = reap_every_s if reap_every_s is not None else lease_s / 2
        self._last_reap = 0.0

    def run_once(self) -> Job | None:
        """Claim and run at most one job. Returns the job that ran, if any."""
        now = time.monotonic()
        if now - self._last_reap >= self.reap_every_s:
            self._last_reap = now
            if reaped := self.queue.reap():
                log.warning("returned %d job(s) with expired leases to the queue", reaped)
        job = self.queue.claim(self.owner)
        if job is None:
            return None
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job, stop), daemon=True,
                                name=f"heartbeat-{job.id}")
        beat.start()
        try:
            self._run(job)
        finally:
            stop.set()
            beat.join()
        return job

    def _run(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise PermanentJobError(f"no handler for job kind {job.kind!r}")
            handler(job)
        except DeferJob as exc:
            self.queue.defer(job, exc.delay_s, str(exc))
            log.info("job %s deferred: %s", job.key, exc)
        except PermanentJobError as exc:
            self.queue.fail(job, str(exc), permanent=True)
            log.error("job %s failed permanently: %s", job.key, exc)
        except Exception as exc:
            state = self.queue.fail(job, f"{type(exc).__name__}: {exc}")
            log.warning("job %s attempt %d failed (%s): %s", job.key, job.attempts, state, exc)
        else:
            if not self.queue.complete(job):
                log.warning("job %s finished after its lease was lost; another worker "
                            "owns it now", job.key)

    def _heartbeat(self, job: Job, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_s):
            if not self.queue.heartbeat(job):
                log.warning("lost the lease on job %s", job.key)
                return

    def run(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.owner)
        while not stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # the store is down: wait and try again, never exit
                log.exception("worker %s could not reach the queue", self.owner)
                ran = None
            if ran is None:
                stop.wait(self.poll_s)
        log.info("worker %s stopped", self.owner)
