"""Starting the drill's processes: a worker, and several things at once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from webhook_server.dev.processes import Process

ROOT = Path(__file__).resolve().parents[2]


def start_worker(name: str, scheduler: bool, settings: dict[str, str], workdir: Path,
                 timeout_s: float = 90) -> Process:
    """``podium worker`` judging by tags (``bench/drill_worker.py``), in its own process
    group, logging to ``workdir/worker.log``; returns once it printed its banner."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "PODIUM_", "SLACK_", "GITLAB_"))}
    env.update(settings)
    log_path = workdir / "worker.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    flag = "--scheduler" if scheduler else "--no-scheduler"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bench.drill_worker",
                                 "--concurrency", "2", flag], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    p = Process(name, "", proc, log_path)
    deadline = time.monotonic() + timeout_s
    while "podium worker: " not in log_path.read_bytes()[offset:].decode(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            p.stop()
            raise RuntimeError(f"{name} did not start; log {log_path}:\n"
                               f"{p.log_tail()}")
        time.sleep(0.1)
    return p


def each(fn, items) -> None:
    """``fn`` on every item at once (starting five processes one by one costs seconds);
    the first exception is raised once all are done."""
    errors: list[BaseException] = []

    def call(item) -> None:
        try:
            fn(item)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
