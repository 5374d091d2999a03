"""Scheduled model jobs from the policy: ``retrain:<model>:<date>``,
``drift:<model>:<date>`` and ``monitor:<model>:<period>`` (``monitoring/job.py``). The
scheduler only inserts the keyed rows; workers run them.

Neither changes anything process-wide in the worker: a retrain runs ``podium train`` as a
child process (its MLflow run, LightGBM's threads and its output stay there), and the drift
job scores the champion in a sandbox through the judge, never loading a model here."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from datetime import UTC, datetime

from sqlalchemy import Connection

from podium_policy.schema import Policy
from webhook_server.adapters.registry import mlflow_client
from webhook_server.contract import TAG_TRIGGER
from webhook_server.jobs.queue import Job, JobQueue
from webhook_server.jobs.worker import Handler, PermanentJobError
from webhook_server.store import Store, audit, outbox

log = logging.getLogger(__name__)
KINDS = ("retrain", "drift")
# Podium's own settings and the notification channels' credentials stay in the worker: the
# training child needs MLflow's (and its artifact store's) credentials, nothing of these.
_NOT_FOR_TRAINING = ("PODIUM_", "SLACK_", "GITLAB_", "DATABRICKS_")


def enqueue_dated(store: Store, queue: JobQueue, kind: str, model: str,
                  now: datetime | None = None, reason: str = "schedule") -> bool:
    with store.tx() as conn:
        return enqueue_dated_in(conn, queue, kind, model, now, reason)


def enqueue_dated_in(conn: Connection, queue: JobQueue, kind: str, model: str,
                     now: datetime | None = None, reason: str = "schedule") -> bool:
    """``enqueue_dated`` in the caller's transaction."""
    day = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    return queue.enqueue(conn, kind=kind, key=f"{kind}:{model}:{day}",
                         payload={"model": model, "reason": reason})


def add_policy_triggers(sched, store: Store, queue: JobQueue, policy: Policy) -> list[str]:
    from apscheduler.triggers.cron import CronTrigger

    added = []
    for model in policy.models:
        schedules = policy.for_model(model).schedules
        for kind in KINDS:
            cron = getattr(schedules, kind)
            if cron:
                sched.add_job(enqueue_dated, CronTrigger.from_crontab(cron, timezone="UTC"),
                              args=(store, queue, kind, model), id=f"{kind}:{model}")
                added.append(f"{kind}:{model} ({cron})")
        if schedules.monitor:  # keyed by the monitoring period, not the day
            from webhook_server.monitoring import job as monitoring

            period = policy.for_model(model).monitoring.period
            sched.add_job(monitoring.enqueue, CronTrigger.from_crontab(
                schedules.monitor, timezone="UTC"), args=(store, queue, model, period),
                id=f"monitor:{model}")
            added.append(f"monitor:{model} ({schedules.monitor})")
    return added


def _audit(store: Store, action: str, model: str, detail: dict) -> None:
    with store.tx() as conn:
        audit.record(conn, actor="scheduler", action=action, subject=model, detail=detail)


def train_command(model: str, cfg, trigger: str) -> list[str]:
    """``podium train`` for the policy's ``training`` section (``cfg``)."""
    cmd = [sys.executable, "-m", "webhook_server.cli", "train", "--model", model,
           "--seed", str(cfg.seed), "--trials", str(cfg.trials), "--request", cfg.request,
           "--tag", f"{TAG_TRIGGER}={trigger}", "--json"]
    return cmd + (["--data", cfg.data] if cfg.data else ["--synthetic", str(cfg.synthetic)])


def training_env(tracking_uri: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The training child's environment: the worker's, without Podium's settings and
    secrets, pointed at ``tracking_uri``."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items()
           if not k.startswith(_NOT_FOR_TRAINING)}
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def _dies_with_its_thread() -> None:  # in the child, before exec: one syscall

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


FENCE_EVERY_S = 5.0


def _train(cmd: list[str], env: dict[str, str], job: Job) -> tuple[int, str, str]:
    """Run the training child to its end: (exit code, stdout, stderr). It dies with the
    worker thread that waits for it (a stopped worker leaves no training behind to register
    a version the job will train again), and while it runs the job's fence is checked every
    few seconds: a worker that lost the lease kills it (``LeaseLost``), so the worker that
    took the job over is the only one to register a version."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True,
                                preexec_fn=_dies_with_its_thread)
        try:
            while True:
                try:
                    proc.wait(timeout=FENCE_EVERY_S)
                    break
                except subprocess.TimeoutExpired:
                    if job.fence is not None:
                        job.fence()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read()


def retrain_handler(store: Store, policy: Policy, tracking_uri: str | None) -> Handler:
    def handle(job: Job) -> None:
        if not tracking_uri:
            raise PermanentJobError("MLFLOW_TRACKING_URI is not set")
        from training import data as churn_data

        model = job.payload["model"]
        cfg = policy.for_model(model).training
        if cfg.data:  # bad data is permanent: say so here instead of retrying the child
            try:
                problems = churn_data.validate(churn_data.read_raw(cfg.data))
            except (OSError, ValueError) as exc:
                raise PermanentJobError(f"training data for {model}: {exc}") from exc
            if problems:
                raise PermanentJobError(f"training data for {model}: "
                                        f"{churn_data.DataError(problems, cfg.data)}")
        returncode, out, err = _train(train_command(model, cfg, job.key),
                                      training_env(tracking_uri), job)
        if returncode != 0:  # MLflow down, out of memory...: the job is retried
            tail = (err.strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"podium train for {model} exited {returncode}: {tail}")
        result = json.loads(out)
        _audit(store, "retrain", model, {
            "job": job.key, "version": result["version"], "requested": result["requested"],
            "holdout_roc_auc": result["metrics"]["holdout_roc_auc"]})
        log.info("%s: trained %s v%s and %s", job.key, model, result["version"],
                 result["requested"])

    return handle


def drift_handler(svc) -> Handler:
    """``svc``: the ``services.Services`` (its policy, store, queue and judge)."""

    def handle(job: Job) -> None:
        model = job.payload["model"]
        mp = svc.policy.for_model(model)
        cfg, uri = mp.drift, svc.settings.mlflow_tracking_uri
        if not uri or not cfg.input:
            raise PermanentJobError(f"drift for {model} needs MLFLOW_TRACKING_URI and "
                                    "drift.input in the policy")
        from model_tests.gates import CheckRunError
        from training.data import DataError
        from training.drift import load_frame, run_drift
        from training.score import default_model_uri

        client = mlflow_client(uri)
        try:
            frame = load_frame(cfg.input)
        except (DataError, OSError) as exc:
            raise PermanentJobError(f"drift input for {model}: {exc}") from exc
        try:
            report = run_drift(client, default_model_uri(model, mp.aliases.champion, client),
                               frame, svc.judge.score, cfg.threshold, tracking_uri=uri)
        except CheckRunError as exc:
            if exc.transient:
                raise
            raise PermanentJobError(f"drift for {model}: {exc}") from exc
        finally:
            svc.judge.release()
        _audit(svc.store, "drift", model, {"job": job.key, **report.as_json()})
        if report.drifted:
            log.warning("%s: drift in %s", job.key, ", ".join(report.drifted))
            with svc.store.tx() as conn:
                outbox.emit(conn, key=f"drift:{job.key}", kind="message", payload={
                    "what": "drift", "model": model, "model_version": report.model_version,
                    "drifted": list(report.drifted), "threshold": cfg.threshold,
                    "retrain": bool(cfg.retrain_on_drift)})
            if cfg.retrain_on_drift:
                enqueue_dated(svc.store, svc.queue, "retrain", model,
                              reason=f"drift ({job.key})")

    return handle


def monitor_handler(svc) -> Handler:
    """``svc``: the ``services.Services``. The monitoring job (``monitoring/job.py``); a
    retrain it asks for is that day's ``retrain:<model>:<date>``; a rollback it asks for
    (``monitoring.on_decay``) enters through the intake (``workflow.rollback.decayed``)."""
    from webhook_server.monitoring import job as monitoring
    from webhook_server.monitoring.recorded import run_figures_of
    from webhook_server.workflow.rollback import decayed

    def handle(job: Job) -> None:
        model = job.payload["model"]
        found = monitoring.run(
            job.payload, store=svc.store, policy=svc.policy,
            queue_retrain=lambda conn, reason: enqueue_dated_in(conn, svc.queue, "retrain",
                                                                model, reason=reason),
            holdout_of=run_figures_of(svc.settings.mlflow_tracking_uri, model),
            ask_rollback=lambda conn, event: decayed(svc.intake, svc.policy, conn, event))
        if found["alert"]:
            log.warning("%s: decay %s, drift in %s, retrain %s", job.key, found["decayed"],
                        found["drifted"] or "nothing", found["retrain"] or "not asked")

    return handle
