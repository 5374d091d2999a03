"""Job handlers by kind (the request job is the workflow when MLflow is configured)."""

from __future__ import annotations

import logging

from webhook_server.intake import Intake
from webhook_server.jobs.queue import Job
from webhook_server.jobs.worker import Handler, PermanentJobError
from webhook_server.reconcile import reconcile
from webhook_server.registry import Registry
from webhook_server.store import Store
from webhook_server.store import requests as reqs

log = logging.getLogger(__name__)


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
                      f"no MLflow server configured: request stays {row['state']}")

    return handle


def reconcile_handler(store: Store, intake: Intake, registry: Registry,
                      challenger_alias: str) -> Handler:
    def handle(job: Job) -> None:
        report = reconcile(store, intake, registry, challenger_alias)
        log.info("reconcile: scanned %d, created %s", report.scanned, report.created)

    return handle


def default_handlers(store: Store, intake: Intake, registry: Registry | None,
                     challenger_alias: str) -> dict[str, Handler]:
    handlers = {"request": request_handler(store)}
    if registry is not None:
        handlers["reconcile"] = reconcile_handler(store, intake, registry, challenger_alias)
    return handlers
