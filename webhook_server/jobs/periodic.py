"""Scheduled model jobs from the policy: ``retrain:<model>:<date>`` and
``drift:<model>:<date>``. The scheduler only inserts the keyed rows; workers run them."""

from __future__ import annotations

import contextlib
import logging
import sys
from datetime import UTC, datetime

from webhook_server.jobs.queue import Job, JobQueue
from webhook_server.jobs.worker import Handler, PermanentJobError
from webhook_server.policy import Policy
from webhook_server.store import Store, audit, outbox

log = logging.getLogger(__name__)
KINDS = ("retrain", "drift")


def enqueue_dated(store: Store, queue: JobQueue, kind: str, model: str,
                  now: datetime | None = None, reason: str = "schedule") -> bool:
    day = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    with store.tx() as conn:
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
    return added


def _audit(store: Store, action: str, model: str, detail: dict) -> None:
    with store.tx() as conn:
        audit.record(conn, actor="scheduler", action=action, subject=model, detail=detail)


def retrain_handler(store: Store, policy: Policy, tracking_uri: str | None,
                    challenger_alias: str) -> Handler:
    def handle(job: Job) -> None:
        if not tracking_uri:
            raise PermanentJobError("MLFLOW_TRACKING_URI is not set")
        from mlflow import MlflowClient

        from training.data import DataError
        from training.requests import request_transition
        from training.train import Dataset, TrainConfig, train

        model = job.payload["model"]
        cfg = policy.for_model(model).training
        try:
            dataset = (Dataset.from_csv(cfg.data) if cfg.data
                       else Dataset.synthetic(cfg.synthetic, cfg.seed))
        except (DataError, OSError) as exc:
            raise PermanentJobError(f"training data for {model}: {exc}") from exc
        with contextlib.redirect_stdout(sys.stderr):
            result = train(dataset, TrainConfig(model_name=model, seed=cfg.seed,
                                                trials=cfg.trials,
                                                tags={"podium.trigger": job.key}),
                           tracking_uri=tracking_uri)
        requested = request_transition(MlflowClient(tracking_uri, tracking_uri), model,
                                       result.version, target=cfg.request)
        _audit(store, "retrain", model, {"job": job.key, "version": result.version,
                                         "requested": requested,
                                         "holdout_roc_auc": result.metrics["holdout_roc_auc"]})
        log.info("%s: trained %s v%s and %s", job.key, model, result.version, requested)

    return handle


def drift_handler(store: Store, queue: JobQueue, policy: Policy,
                  tracking_uri: str | None) -> Handler:
    def handle(job: Job) -> None:
        model = job.payload["model"]
        cfg = policy.for_model(model).drift
        if not tracking_uri or not cfg.input:
            raise PermanentJobError(f"drift for {model} needs MLFLOW_TRACKING_URI and "
                                    "drift.input in the policy")
        import mlflow

        from training.drift import drift_report, load_frame, read_reference
        from training.score import default_model_uri, resolve_version

        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        client = mlflow.MlflowClient()
        uri = default_model_uri(model, policy.for_model(model).aliases.champion)
        version = resolve_version(uri)
        name, number = version.split("/", 1)
        frame = load_frame(cfg.input)
        predictions = mlflow.sklearn.load_model(uri).predict_proba(frame)[:, 1]
        report = drift_report(read_reference(client.get_model_version(name, number).run_id),
                              frame, predictions, version, cfg.threshold)
        _audit(store, "drift", model, {"job": job.key, **report.as_json()})
        if report.drifted:
            log.warning("%s: drift in %s", job.key, ", ".join(report.drifted))
            with store.tx() as conn:
                outbox.emit(conn, key=f"drift:{job.key}", kind="message", payload={
                    "text": f":warning: {model} ({version}): drift in "
                            f"{', '.join(report.drifted)} (PSI >= {cfg.threshold:g})"
                            + ("; retraining queued" if cfg.retrain_on_drift else "")})
            if cfg.retrain_on_drift:
                enqueue_dated(store, queue, "retrain", model, reason=f"drift ({job.key})")

    return handle
