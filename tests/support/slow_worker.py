"""A worker process whose one handler is slow and records what it does (fault tests).

usage: python -m tests.support.slow_worker DATABASE_URL LOG_FILE SECONDS LEASE_S
"""

from __future__ import annotations

import os
import sys
import threading
import time

from webhook_server.jobs.queue import SqlJobQueue
from webhook_server.jobs.worker import Worker
from webhook_server.store import Store


def main() -> None:
    url, log_file, seconds, lease = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    queue = SqlJobQueue(Store(url), lease_s=lease, backoff_s=0)

    def slow(job):
        with open(log_file, "a") as f:
            f.write(f"started {os.getpid()}\n")
        time.sleep(seconds)
        with open(log_file, "a") as f:
            f.write(f"completed {os.getpid()}\n")

    Worker(queue, {"slow": slow}, poll_s=0.05, lease_s=lease,
           reap_every_s=0.1).run(threading.Event())


if __name__ == "__main__":
    main()
