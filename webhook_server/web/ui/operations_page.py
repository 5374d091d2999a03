"""Operations (/ui/operations): the inbox (deliveries, their outcome and duplicates), dead
jobs with Replay, the outbox (pending, dead, Resend), the reconciler's last run.

Replay is ``podium replay`` (``webhook_server.service.replay``) for a request's job: the request
comes back with it; other dead jobs (reconcile, retrain, drift, Slack clicks) are requeued.
Resend is ``podium outbox --retry``. Both are for the policy's operators (``workflow.
permissions``: by default, people who approve some model), and both leave an audit row."""

from __future__ import annotations

from flask import flash, g, redirect, url_for

from webhook_server.jobs.queue import DEAD, counts, list_jobs
from webhook_server.service.replay import ReplayError, replay
from webhook_server.store import audit, views
from webhook_server.store import outbox as ob
from webhook_server.store import transition_requests as reqs
from webhook_server.web.ui import access, present
from webhook_server.web.ui.web import bp, error_page, page, services
from webhook_server.workflow import permissions
from webhook_server.workflow.errors import NotAllowed


@bp.get("/operations")
def operations():
    svc = services()
    with svc.store.read() as conn:
        data = {
            "deliveries": views.deliveries_recent(conn, limit=50),
            "dead_jobs": list_jobs(conn, state=DEAD, limit=50),
            "job_counts": counts(conn),
            "outbox_counts": sorted(ob.counts(conn).items()),
            "outbox_rows": ob.list_(conn, state=ob.DEAD, limit=50)
            + ob.list_(conn, state=ob.PENDING, limit=50),
            "reconcile_job": views.last_job(conn, "reconcile"),
            "reconcile_last": views.last_delivery(conn, "reconcile"),
            "reconcile_count": views.count_from(conn, "reconcile"),
        }
    return page("operations.html", **data, may_operate=access.may_operate(svc, g.actor),
                present=present, reconcile_every=svc.settings.reconcile_interval_s)


def _refused(svc, action: str, subject: str):
    """None when ``g.actor`` may ``action``; else the 403 page (and the audit row)."""
    try:
        permissions.authorize(svc.store, access.policy(svc), action, g.actor, subject=subject,
                              detail={"via": "ui"})
    except NotAllowed as exc:
        return error_page(403, f"not allowed: {exc}. Nothing was changed.")
    return None


@bp.post("/operations/jobs/<int:job_id>/replay")
def replay_job(job_id: int):
    svc = services()
    if (refused := _refused(svc, "replay", f"job:{job_id}")) is not None:
        return refused
    with svc.store.read() as conn:
        job = views.job(conn, job_id)
        req = (reqs.get(conn, job["payload"]["request_id"])
               if job and job["kind"] == "request"
               and isinstance(job["payload"].get("request_id"), int) else None)
    if job is None:
        return error_page(404, f"no job {job_id}")
    if job["state"] != DEAD:
        return error_page(409, f"job {job['key']} is {job['state']}, not dead: nothing to "
                               "replay")
    try:
        if req is not None and req.delivery_pk is not None:
            out = replay(svc, str(req.delivery_pk), actor=g.actor)
            done = ", ".join(out.get("jobs", [])) or out.get("action", "replayed")
        else:
            done = job["key"] if svc.queue.requeue(job["key"]) else ""
    except ReplayError as exc:
        return error_page(exc.status, str(exc))
    if not done:
        return error_page(409, f"job {job['key']} is no longer dead")
    with svc.store.tx() as conn:
        audit.record(conn, actor=g.actor, action="replay", subject=f"job:{job['key']}",
                     detail={"via": "ui"})
    flash(f"replayed as {g.actor}: {done}")
    return redirect(url_for("ui.operations"), 303)


@bp.post("/operations/outbox/<int:row_id>/resend")
def resend(row_id: int):
    svc = services()
    if (refused := _refused(svc, "resend", f"outbox:{row_id}")) is not None:
        return refused
    with svc.store.tx() as conn:
        if not ob.retry(conn, row_id):
            return error_page(409, f"notification {row_id} does not exist or was already "
                                   "sent")
        audit.record(conn, actor=g.actor, action="resend", subject=f"outbox:{row_id}",
                     detail={"via": "ui"})
    flash(f"notification {row_id} queued again by {g.actor}")
    return redirect(url_for("ui.operations"), 303)
