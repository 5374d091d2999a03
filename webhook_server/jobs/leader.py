"""The periodic triggers fire in exactly one process across every node: the holder of the
lease ``scheduler`` in the store (``store/leases.py``).

Every process started with the scheduler is a candidate. The holder renews the lease every
third of its length; a candidate tries to take it every tenth, so a killed holder is
replaced within one lease and a tenth of its last renewal. The holder runs APScheduler; it
stops it when a renewal is refused (someone else holds the lease now) or when it could not
renew before the lease ran out (the store unreachable: it cannot know). Fencing: each fire
first checks that the lease is still this process's (in memory: not past the lease measured
from before the last renewal; then one read of the row), so a holder that stalled past its
lease (a pause, a slow disk) does not fire once more before its next turn notices. The
triggers only insert keyed job rows, so even a fire that slipped through changes nothing.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

from apscheduler.schedulers.base import BaseScheduler

from webhook_server.store import Store, leases

log = logging.getLogger(__name__)
LEASE = "scheduler"


class LeasedScheduler:
    def __init__(self, store: Store, build: Callable[[], BaseScheduler], *, owner: str,
                 ttl_s: float, name: str = LEASE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``build`` makes a new, unstarted scheduler with every trigger (called each time
        this process takes the lease)."""
        self.store, self.build, self.owner = store, build, owner
        self.ttl_s, self.name, self.clock = ttl_s, name, clock
        self._sched: BaseScheduler | None = None
        self._valid_until = float("-inf")  # the lease is surely ours until then
        self.fired = 0  # fires that ran (tests)
        self.fenced = 0  # fires refused because the lease was not ours

    @property
    def leading(self) -> bool:
        return self._sched is not None

    def step(self) -> bool:
        """One turn: renew the lease held, or try to take it; start or stop the scheduler
        to match. Returns whether this process runs the triggers now."""
        started = self.clock()
        try:
            with self.store.tx() as conn:
                how = leases.renew if self.leading else leases.acquire
                held: bool | None = how(conn, self.name, self.owner, self.ttl_s)
        except Exception as exc:  # the store is unreachable, or a candidate raced us
            log.warning("scheduler lease not renewed or taken (%s)", type(exc).__name__)
            held = None
        if held:
            self._valid_until = started + self.ttl_s
            if not self.leading:
                try:
                    self._start()
                except Exception:  # fire nothing while holding the lease: give it up
                    log.exception("%s could not start the scheduler; lease %s given up",
                                  self.owner, self.name)
                    self._valid_until = float("-inf")
                    self._release()
                    return False
        elif self.leading and (held is False or self.clock() >= self._valid_until):
            self._stop("lost" if held is False else "could not be renewed in time")
        return self.leading

    def holds(self) -> bool:
        """The fence: the lease is this process's right now (memory, then the store)."""
        if self.clock() >= self._valid_until:
            return False
        try:
            with self.store.read() as conn:
                return leases.holds(conn, self.name, self.owner)
        except Exception:
            return False

    def run(self, stop: threading.Event) -> None:
        """Take turns until ``stop`` is set; then stop firing and give the lease up."""
        while True:
            leading = self.step()
            if stop.wait(self.ttl_s / 3 if leading else self.ttl_s / 10):
                break
        self.close()

    def close(self) -> None:
        if self.leading:
            self._stop("stopping")
            self._release()

    def _release(self) -> None:
        try:
            with self.store.tx() as conn:
                leases.release(conn, self.name, self.owner)
        except Exception:
            log.warning("scheduler lease not released; it expires by itself")

    def _start(self) -> None:
        sched = self.build()
        for job in sched.get_jobs():
            job.modify(func=self._fence(job.func, job.id))
        sched.start()
        self._sched = sched
        log.info("%s runs the scheduler (lease %s, %g s)", self.owner, self.name, self.ttl_s)

    def _stop(self, why: str) -> None:
        sched, self._sched = self._sched, None
        self._valid_until = float("-inf")
        if sched is not None:
            sched.shutdown(wait=False)
        log.warning("%s stopped the scheduler: lease %s %s", self.owner, self.name, why)

    def _fence(self, fn: Callable, job_id: str) -> Callable:
        @functools.wraps(fn)
        def fire(*args, **kwargs):
            if not self.holds():
                self.fenced += 1
                log.warning("trigger %s not fired: %s no longer holds lease %s", job_id,
                            self.owner, self.name)
                return None
            self.fired += 1
            return fn(*args, **kwargs)
        return fire
