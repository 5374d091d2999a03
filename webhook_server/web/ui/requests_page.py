"""The requests table (/ui/) and one request (/ui/requests/<id>), with Approve / Reject.

Decisions call ``Workflow.decide`` like Slack, the CLI and the API: the same rules (who
may, quorum, self-approval, expiry), the same audit rows and compare-and-set; the actor is
``ui:<name>``."""

from __future__ import annotations

from flask import flash, g, jsonify, redirect, request, url_for

from webhook_server import contract
from webhook_server.intake import validate
from webhook_server.store import audit, outbox, states, views
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import stage_seconds
from webhook_server.web.ui import access, links, present
from webhook_server.web.ui.web import bp, error_page, page, services
from webhook_server.workflow import DecisionConflict, DecisionRefused, NotAllowed
from webhook_server.workflow.decisions import evidence_digest

PAGE_SIZE = 25
STATES = (*states.OPEN, *states.TERMINAL)
RUNNING = tuple(s for s in states.OPEN  # waiting for a person or for live outcomes: not
                if s not in (states.AWAITING_APPROVAL, states.SHADOWING))  # running


def _filters() -> tuple[str | None, str | None, int | None] | str:
    """(model, state, before) from the query, or why they are unusable."""
    model = request.args.get("model", "").strip() or None
    state = request.args.get("state", "").strip() or None
    before = request.args.get("before", "").strip() or None
    if model and (len(model) > validate.MAX_NAME or any(ord(c) < 0x20 for c in model)):
        return f"model filter: at most {validate.MAX_NAME} printable characters"
    if state and state not in STATES:
        return f"state filter: one of {', '.join(STATES)}"
    if before and not validate.is_digits(before, 18):
        return "before: a request number"
    return model, state, int(before) if before else None


@bp.get("/")
def requests_list():
    found = _filters()
    if isinstance(found, str):
        return error_page(400, found)
    model, state, before = found
    with services().store.read() as conn:
        rows, more = views.requests_page(conn, model=model, state=state, before=before,
                                           size=PAGE_SIZE)
        pending = (reqs.list_(conn, model=model, state=states.AWAITING_APPROVAL, limit=50)
                   if before is None and state in (None, states.AWAITING_APPROVAL) else [])
        models = views.models(conn)
    return page("requests.html", rows=rows, pending=pending, more=more, model=model,
                state=state, before=before, states=STATES, models=models, age=present.age)


@bp.get("/requests/<int:request_id>")
def request_view(request_id: int):
    svc = services()
    with svc.store.read() as conn:
        req = reqs.get(conn, request_id)
        if req is None:
            return error_page(404, f"no request {request_id}")
        history = reqs.history(conn, request_id)
        approvals = audit.approvals(conn, contract.request_subject(request_id))
        thread = outbox.thread(conn, request_id)
    doc = present.evidence(req)
    waiting = req.state == states.AWAITING_APPROVAL
    rollback = req.origin == "rollback"
    return page("request.html", req=req, history=history, seconds=stage_seconds(history),
                rollback=rollback, decay=present.decay(doc),
                checks=present.checks(doc), comparison=present.comparison(doc),
                live_evidence=present.live(doc),
                holdout=present.holdout(doc), digest=present.digest(req, evidence_digest),
                links=links.for_request(svc.settings, req, thread), approvals=approvals,
                waiting=waiting, running=req.state in RUNNING,
                live=req.state in states.OPEN, blocked=access.why_not_here(svc),
                may_decide=waiting and (
                    access.may_roll_back(svc, req.model, g.actor) if rollback
                    else access.may_decide(svc, req.model, g.actor)),
                who_may=(access.who_may_roll_back(svc, req.model) if rollback
                         else access.who_may(svc, req.model)),
                quorum=access.quorum(svc, req.model, rollback=rollback), present=present,
                mark=_mark(req, len(history)))


@bp.get("/requests/<int:request_id>/verify")
def request_verify(request_id: int):
    """The decision computed again from its evidence bundle (``podium verify``)."""
    from webhook_server.service.evidence import EvidenceError, verify

    svc = services()
    if svc.registry is None:
        return error_page(503, "no MLflow server is configured: the evidence bundles are "
                               "MLflow artifacts")
    try:
        result = verify(svc.store, svc.registry, request_id)
    except EvidenceError as exc:
        return error_page(exc.status, str(exc))
    return page("verify.html", result=result)


def _mark(req, lines: int) -> str:
    """Changes whenever the request moves, gets a note or a decider."""
    return f"{req.state}|{lines}|{req.decided_by}"


@bp.get("/requests/<int:request_id>/poll")
def request_poll(request_id: int):
    """What changes when the request moves (the page's script reloads on a change)."""
    with services().store.read() as conn:
        req = reqs.get(conn, request_id)
        if req is None:
            return jsonify({"error": f"no request {request_id}"}), 404
        lines = len(reqs.history(conn, request_id))
    return jsonify({"state": req.state, "mark": _mark(req, lines)})


@bp.post("/requests/<int:request_id>/approve")
def approve(request_id: int):
    return _decide(request_id, True)


@bp.post("/requests/<int:request_id>/reject")
def reject(request_id: int):
    return _decide(request_id, False)


def _decide(request_id: int, approve: bool):
    svc = services()
    field = "note" if approve else "reason"
    try:
        text = validate.clean_text(request.form.get(field, ""), field, max_len=500).strip()
    except validate.ValidationError as exc:
        return error_page(exc.status, str(exc))
    evidence = request.form.get("evidence", "")
    if not validate.SHA256.match(evidence):
        return error_page(400, "the form carries no evidence digest: reload the request and "
                               "decide on what it shows. Nothing was changed.")
    with svc.store.read() as conn:
        if reqs.get(conn, request_id) is None:
            return error_page(404, f"no request {request_id}")
    if (why := access.why_not_here(svc)) is not None:
        return error_page(503, why)
    try:
        out = svc.workflow.decide(request_id, g.actor, approve, text or None,
                                  evidence=evidence)
    except NotAllowed as exc:
        return error_page(403, f"not allowed: {exc}. Nothing was changed.")
    except DecisionConflict as exc:
        return error_page(409, str(exc))
    except DecisionRefused as exc:
        return error_page(422, f"refused: {exc}: write why in the Reason box. Nothing was "
                               "changed.")
    flash(f"{'approved' if approve else 'rejected'} as {g.actor}: request is now "
          f"{out.get('state')}")
    return redirect(url_for("ui.request_view", request_id=request_id), 303)
