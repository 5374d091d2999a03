"""Job handlers by kind. The request handler is where the workflow plugs in."""

from __future__ import annotations

import logging

from webhook_server.constants import TAG_REQUEST_ID, TAG_STATUS
from webhook_server.intake import Intake
from webhook_server.jobs.queue import Job
from webhook_server.jobs.worker import Handler, PermanentJobError
from webhook_server.reconcile import reconcile
from webhook_server.registry import Registry
from webhook_server.store import Store, states
from webhook_server.store import requests as reqs

log = logging.getLogger(__name__)


def request_handler(store: Store, registry: Registry | None) -> Handler:
    """Report the request's state on the version (the workflow replaces this step)."""

    def handle(job: Job) -> None:
        request_id = job.payload["request_id"]
        with store.read() as conn:
            row = reqs.get(conn, request_id)
        if row is None:
            raise PermanentJobError(f"request {request_id} does not exist")
        if registry is not None:
            # podium.status last: a reader that sees it sees the other tags too
            tags = {TAG_REQUEST_ID: str(request_id)}
            if row["reason"]:
                tags["podium.reason"] = row["reason"][:500]
            tags[TAG_STATUS] = row["state"]
            try:
                registry.set_tags(row["model"], row["version"], tags)
            except Exception as exc:
                if _missing(exc):
                    _fail_missing(store, row)
                    raise PermanentJobError(
                        f"model {row['model']!r} version {row['version']} does not exist"
                    ) from exc
                raise
        with store.tx() as conn:
            reqs.note(conn, request_id, f"job:{job.key}",
                      f"reported state {row['state']} (attempt {job.attempts})")

    return handle


def _missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def _fail_missing(store: Store, row: dict) -> None:
    with store.tx() as conn:
        reqs.transition(conn, row["id"], expect=states.OPEN, to=states.FAILED, actor="worker",
                        reason=f"model {row['model']!r} version {row['version']} "
                               "does not exist in the registry")


def reconcile_handler(store: Store, intake: Intake, registry: Registry,
                      challenger_alias: str) -> Handler:
    def handle(job: Job) -> None:
        report = reconcile(store, intake, registry, challenger_alias)
        log.info("reconcile: scanned %d, created %s", report.scanned, report.created)

    return handle


def default_handlers(store: Store, intake: Intake, registry: Registry | None,
                     challenger_alias: str) -> dict[str, Handler]:
    handlers = {"request": request_handler(store, registry)}
    if registry is not None:
        handlers["reconcile"] = reconcile_handler(store, intake, registry, challenger_alias)
    return handlers
