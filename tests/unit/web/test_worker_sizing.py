"""A worker sizes itself from the machine: a job thread per usable CPU (at least two) and a
spare sandbox for each thread's next check."""

import os

from webhook_server.web.serve import default_worker_threads, spares_for


def test_a_worker_runs_one_job_thread_per_usable_cpu_and_at_least_two():
    assert default_worker_threads() == max(2, len(os.sched_getaffinity(0)))


def test_a_worker_keeps_a_spare_per_thread_unless_told_none_or_more():
    assert spares_for(2, 8) == 8  # eight threads: eight checks may start at once
    assert spares_for(4, 2) == 4  # more asked for: kept
    assert spares_for(0, 8) == 0  # none asked for (memory): none
