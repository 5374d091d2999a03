"""A scheduler candidate process for the lease tests: writes ``lead``/``lost`` when it takes
or loses the scheduler lease and ``fire`` each time its 0.1 s trigger runs, each line with
its pid and CLOCK_MONOTONIC (one clock for every process on the machine). A ``fire`` line
carries the time the lease check that let it through (the fence) started, not of the write:
a process stopped between the two writes late, and its check is what the lease tests judge.

usage: python -m tests.unit.jobs.leader_child DATABASE_URL LOG_FILE LEASE_S
"""

from __future__ import annotations

import os
import sys
import threading
import time

from apscheduler.schedulers.background import BackgroundScheduler

from webhook_server.jobs.leader import LeasedScheduler
from webhook_server.store import Store


def write(log_path: str, what: str, at: float | None = None) -> None:
    with open(log_path, "a") as log:
        log.write(f"{what} {os.getpid()} {time.monotonic() if at is None else at:.6f}\n")


class Candidate(LeasedScheduler):
    def __init__(self, *args, log_path: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log_path = log_path
        self.checked_at = 0.0  # the last lease check that found the lease ours

    def holds(self) -> bool:
        # the clock read as the check starts: read after it returns, a process stopped
        # between the two (a SIGSTOP right after the store answered) stamped a check made
        # under its lease with a time after its successor took over (CI saw it)
        starting = time.monotonic()
        ok = super().holds()
        if ok:
            self.checked_at = starting
        return ok

    def _start(self) -> None:
        super()._start()
        write(self.log_path, "lead")

    def _stop(self, why: str) -> None:
        super()._stop(why)
        write(self.log_path, "lost")


def main() -> None:
    url, log_path, ttl = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def build() -> BackgroundScheduler:
        sched = BackgroundScheduler(timezone="UTC")
        sched.add_job(lambda: write(log_path, "fire", at=candidate.checked_at), "interval",
                      seconds=0.1, id="fire")
        return sched

    candidate = Candidate(Store(url), build, owner=f"child-{os.getpid()}", ttl_s=ttl,
                          log_path=log_path)
    candidate.run(threading.Event())


if __name__ == "__main__":
    main()
