"""``podium serve``: gunicorn in front, a worker process (with the scheduler) beside it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from webhook_server.core.settings import Settings
from webhook_server.jobs.leader import LeasedScheduler
from webhook_server.jobs.scheduler import build_scheduler
from webhook_server.jobs.worker import Worker, default_owner, run_heartbeat
from webhook_server.service.model_jobs import add_policy_triggers
from webhook_server.service.services import Services

log = logging.getLogger(__name__)


def default_web_workers() -> int:
    return 2 * (os.cpu_count() or 1)


def default_worker_threads() -> int:
    """Job threads of a worker process: one per CPU it may use, at least two. A decision is
    CPU work (a sandbox's imports, the model's scoring, the checks): a thread per core keeps
    every core busy; more only queue on the same cores, and the latency check would then
    measure that queue. Two at least, so one model's long decision does not hold another's
    (docs/performance.md)."""
    try:
        cpus = len(os.sched_getaffinity(0))  # the CPUs this process may run on
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(2, cpus)


class _Gunicorn(BaseApplication):
    """Embedded gunicorn: each worker process builds its own app (no shared connections)."""

    def __init__(self, factory: Callable[[], object], options: dict) -> None:
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.factory()


class PodiumGunicornLogger(GunicornLogger):
    """gunicorn's error and access lines through Podium's logging (``core/logs.py``): the
    same format (JSON or text) and fields as every other line. An access line is one
    record on ``podium.access`` with method, path, status, duration and client."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True

    @property
    def access_log_enabled(self) -> bool:
        return True

    def access(self, resp, req, environ, request_time) -> None:
        ms = round(request_time.total_seconds() * 1000, 2)
        status = int(str(resp.status).split(None, 1)[0])
        logging.getLogger("podium.access").info(
            "%s %s %s %.2fms", req.method, req.path, status, ms,
            extra={"http_method": req.method, "http_path": req.path, "http_status": status,
                   "duration_ms": ms, "client": environ.get("REMOTE_ADDR")})


def gunicorn_options(host: str, port: int, workers: int) -> dict:
    # Sync workers: every request is short (verify, one commit, answer). gthread with
    # keep-alive measured 3-5x slower here under concurrent senders (bench/intake.py).
    return {"bind": f"{host}:{port}", "workers": workers, "worker_class": "sync",
            "graceful_timeout": 10, "timeout": 30, "accesslog": None, "errorlog": "-",
            "loglevel": "warning", "proc_name": "podium", "limit_request_field_size": 8190,
            "logger_class": PodiumGunicornLogger}


def run_gunicorn(factory: Callable[[], object], host: str, port: int, workers: int) -> None:
    _Gunicorn(factory, gunicorn_options(host, port, workers)).run()


def run_http(settings: Settings, host: str, port: int, workers: int) -> None:
    from webhook_server.web.app import create_app

    run_gunicorn(lambda: create_app(settings), host, port, workers)


def spawn_worker_process(scheduler: bool, concurrency: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "webhook_server.cli", "worker",
           "--concurrency", str(concurrency), "--scheduler" if scheduler else "--no-scheduler"]
    return subprocess.Popen(cmd)


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def spares_for(configured: int, threads: int) -> int:
    """Spare sandboxes of a worker with ``threads`` job threads: one for each thread's next
    check when the setting asks for fewer, none when it asks for none."""
    return threads if 0 < configured < threads else configured


def run_workers(svc: Services, *, concurrency: int, scheduler: bool,
                stop: threading.Event) -> None:
    """Run ``concurrency`` worker threads (and the scheduler) until ``stop`` is set."""
    s = svc.settings
    from webhook_server.service.handlers import for_services

    handlers = for_services(svc)
    if concurrency:
        pool = svc.sandboxes
        pool.spares = spares_for(pool.spares, concurrency)
        pool.warm()  # the first request does not wait for the imports
    threads = [threading.Thread(target=run_sender, args=(svc, stop), name="outbox-sender",
                                daemon=True)]
    if concurrency:  # a process that runs jobs says it is alive (podium_workers)
        threads.append(threading.Thread(target=run_heartbeat,
                                        args=(svc.store, default_owner(), stop),
                                        name="worker-heartbeat", daemon=True))
    if scheduler:  # a candidate: the holder of the scheduler lease fires, on one node
        leader = LeasedScheduler(svc.store, lambda: _scheduler(svc), owner=default_owner(),
                                 ttl_s=s.leader_lease_s)
        threads.append(threading.Thread(target=leader.run, args=(stop,), name="scheduler",
                                        daemon=True))
    for t in threads:
        t.start()
    for i in range(concurrency):
        worker = Worker(svc.queue, handlers, poll_s=s.worker_poll_s, lease_s=s.job_lease_s,
                        doorbell=svc.queue.doorbell)
        t = threading.Thread(target=worker.run, args=(stop,), name=f"worker-{i}", daemon=True)
        t.start()
        threads.append(t)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


def _scheduler(svc: Services) -> BackgroundScheduler:
    """A new, unstarted scheduler with every periodic trigger (built on taking the lease)."""
    s = svc.settings
    sched = build_scheduler(svc.store, svc.queue,
                            reconcile_interval_s=(s.reconcile_interval_s
                                                  if svc.registry is not None else None),
                            reap_interval_s=max(1.0, s.job_lease_s / 2),
                            prune_after_days=s.prune_after_days)
    for trigger in add_policy_triggers(sched, svc.store, svc.queue, svc.policy):
        log.info("scheduled %s", trigger)
    if svc.registry is not None:
        sched.add_job(svc.workflow.expire_approvals, "interval",
                      seconds=s.approval_check_interval_s, id="expire-approvals")
        sched.add_job(svc.workflow.check_shadowing, "interval",  # comparison.live
                      seconds=s.live_check_interval_s, args=(s.live_check_interval_s,),
                      id="live-evidence")
    return sched


def run_sender(svc: Services, stop: threading.Event) -> None:
    """Send the notification outbox until ``stop`` is set (one sender holds the lease)."""
    owner = default_owner()
    senders = (svc.slack_sender(owner=owner), svc.gitlab_sender(owner=owner))
    poll = max(svc.settings.worker_poll_s, 0.2)
    while not stop.is_set():
        for sender in senders:
            try:
                sender.flush()
            except Exception:  # the store is down: try again, never exit
                log.exception("outbox sender pass failed (%s)", type(sender).__name__)
        stop.wait(poll)
