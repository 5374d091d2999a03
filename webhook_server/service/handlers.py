"""The job kinds and their handlers. The job runner (``jobs/``) knows kinds only through
the dictionary built here, by the layer above it."""

from __future__ import annotations

import logging

from webhook_server.jobs.queue import Job
from webhook_server.jobs.worker import Handler, PermanentJobError
from webhook_server.service import model_jobs
from webhook_server.service.approvals import slack_action_handler
from webhook_server.service.services import Services
from webhook_server.store import Store
from webhook_server.store import transition_requests as reqs
from webhook_server.store.prune import prune
from webhook_server.workflow.reconcile import reconcile

log = logging.getLogger(__name__)


def for_services(svc: Services) -> dict[str, Handler]:
    """``request``, ``revert``, ``reconcile``, ``slack_action`` (with MLflow), ``retrain``,
    ``drift``, ``monitor``, ``prune``."""
    s = svc.settings
    handlers: dict[str, Handler] = {"request": request_handler(svc.store),
                                    "revert": lambda job: log.info(
                                        "no MLflow server configured: %s has nothing to "
                                        "look at", job.key)}
    if svc.registry is not None:
        handlers["request"] = svc.workflow.handle
        handlers["revert"] = svc.workflow.revert
        handlers["reconcile"] = reconcile_handler(svc)
        handlers["slack_action"] = slack_action_handler(svc)
    handlers["retrain"] = model_jobs.retrain_handler(svc.store, svc.policy,
                                                     s.mlflow_tracking_uri)
    handlers["drift"] = model_jobs.drift_handler(svc)
    handlers["monitor"] = model_jobs.monitor_handler(svc)
    handlers["prune"] = prune_handler(svc.store)
    return handlers


def prune_handler(store: Store) -> Handler:
    """The daily prune (PODIUM_PRUNE_AFTER_DAYS): deliveries, outbox rows, finished jobs."""
    def handle(job: Job) -> None:
        with store.tx() as conn:
            removed = prune(conn, job.payload["older_than_days"])
        log.info("pruned rows older than %s days: %s", job.payload["older_than_days"],
                 ", ".join(f"{t} {n}" for t, n in removed.items()))

    return handle


def request_handler(store: Store) -> Handler:
    """Without an MLflow server there is nothing to check or promote: record that."""

    def handle(job: Job) -> None:
        request_id = job.payload["request_id"]
        with store.read() as conn:
            row = reqs.get(conn, request_id)
        if row is None:
            raise PermanentJobError(f"request {request_id} does not exist")
        with store.tx() as conn:
            reqs.note(conn, request_id, f"job:{job.key}",
                      f"no MLflow server configured: request stays {row.state}")

    return handle


def reconcile_handler(svc: Services) -> Handler:
    """Missed requests (reconcile.py), then champions moved outside Podium."""
    def handle(job: Job) -> None:
        report = reconcile(svc.store, svc.intake, svc.registry, svc.settings.challenger_alias)
        moved = svc.workflow.check_champions()
        if report.created or moved:
            log.warning("reconcile: scanned %d, created %s, external champion moves %s",
                        report.scanned, report.created, moved)

    return handle
