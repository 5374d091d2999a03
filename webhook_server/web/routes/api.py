"""/api/v1: JSON for scripts and operators, behind a bearer token."""

from __future__ import annotations

import json
import uuid

from flask import Blueprint, g, jsonify, request

from webhook_server.intake import validate
from webhook_server.intake.events import TARGETS, TransitionRequested, normalise_target
from webhook_server.intake.sources import Delivery, PayloadError
from webhook_server.intake.sources._common import (
    is_number,
)
from webhook_server.service.replay import ReplayError, replay
from webhook_server.store import StoreUnavailable
from webhook_server.store import transition_requests as reqs
from webhook_server.web.routes import (
    bearer_matches,
    count_failure,
    error,
    services,
    too_many_failures,
)
from webhook_server.workflow import DecisionConflict, DecisionRefused, NotAllowed, RollbackRefused
from webhook_server.workflow.decisions import evidence_digest

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def _authenticate():
    """Each token names its actor (``api:<name>``); a body never chooses who acts."""
    tokens = services().settings.api_tokens()
    if not tokens:
        return error(401, "the API is disabled: PODIUM_API_TOKEN is not set (nor "
                          "PODIUM_API_TOKENS / PODIUM_API_TOKENS_FILE)")
    offered = request.headers.get("Authorization", "")
    scheme, _, value = offered.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return error(401, "missing bearer token")
    if (refused := too_many_failures()) is not None:  # before comparing: no oracle
        return refused
    name = None
    for token, who in tokens.items():  # compare with every token: no early exit
        if bearer_matches(value, token):
            name = who
    if name is None:
        count_failure()
        return error(401, "invalid bearer token")
    g.actor = f"api:{name}"
    return None


@bp.get("/requests")
def list_requests():
    limit = request.args.get("limit", "100")
    if not is_number(limit) or len(limit) > 4 or not 1 <= int(limit) <= 1000:
        return error(400, "limit must be an integer between 1 and 1000")
    with services().store.read() as conn:
        rows = reqs.list_(conn, model=request.args.get("model"),
                          state=request.args.get("state"), limit=int(limit))
    return jsonify({"requests": [r.as_json() for r in rows]})


@bp.get("/requests/<int:request_id>")
def show_request(request_id: int):
    with services().store.read() as conn:
        row = reqs.get(conn, request_id)
        if row is None:
            return error(404, f"no request {request_id}")
        return jsonify({**row.as_json(reqs.history(conn, request_id)),
                        "evidence_sha256": evidence_digest(row)})


@bp.get("/requests/<int:request_id>/verify")
def verify_request(request_id: int):
    """The decision computed again from its evidence bundle alone (``podium verify``):
    200 with ``verified`` true or false and each difference; 404 no such request or no
    bundle; 503 MLflow unset or the bundle unreadable now."""
    from webhook_server.service.evidence import EvidenceError, verify

    svc = services()
    if svc.registry is None:
        return error(503, "MLFLOW_TRACKING_URI is not set: the evidence bundles are MLflow "
                          "artifacts")
    try:
        return jsonify(verify(svc.store, svc.registry, request_id).as_json())
    except EvidenceError as exc:
        return error(exc.status, str(exc))


@bp.post("/requests")
def create_request():
    if request.mimetype != "application/json":
        return error(415, "expected Content-Type application/json")
    try:
        doc = validate.body_object(request, required=True)
        model, version = validate.model_name(doc, "model"), validate.version(doc)
        raw_target = validate.text(doc, "target", max_len=100)
        comment = validate.field(doc, "comment", str)
        delivery_id = validate.clean_text(request.headers.get("Idempotency-Key")
                                          or uuid.uuid4().hex, "Idempotency-Key",
                                          max_len=255, status=400)
    except PayloadError as exc:
        return error(exc.status, str(exc))
    if normalise_target(raw_target) is None:
        return error(422, f"invalid target {raw_target!r}: expected one of {', '.join(TARGETS)}")
    event = TransitionRequested(model, version, raw_target, origin="api",
                                requested_by=g.actor,
                                comment=comment)
    delivery = Delivery("api", delivery_id, "api.request",
                        json.dumps(doc, sort_keys=True), event)
    try:
        result = services().intake.record(delivery)
    except StoreUnavailable:
        return error(503, "cannot store the request right now; retry later")
    return jsonify(result.as_json()), 200 if result.duplicate else 201


@bp.post("/deliveries/<ref>/replay")
def replay_delivery(ref: str):
    try:
        return jsonify(replay(services(), ref, actor=g.actor))
    except NotAllowed as exc:
        return error(403, str(exc))
    except ReplayError as exc:
        return error(exc.status, str(exc))


def _decide(request_id: int, approve: bool):
    svc = services()
    try:
        doc = validate.body_object(request)
        note = (validate.field(doc, "note", str) if approve
                else validate.text(doc, "reason", required=True, max_len=500))
        evidence = validate.field(doc, "evidence", str)
        if evidence is not None and not validate.SHA256.match(evidence):
            raise PayloadError("evidence must be the 64-hex-digit evidence digest shown "
                               "with the request (GET /api/v1/requests/<id>)", 422)
    except PayloadError as exc:
        msg = str(exc)
        if not approve and "reason" in msg:
            msg = f"a rejection needs a reason: send {{\"reason\": \"...\"}} ({msg})"
        return error(exc.status, msg)
    with svc.store.read() as conn:
        if reqs.get(conn, request_id) is None:
            return error(404, f"no request {request_id}")
    if svc.registry is None:
        return error(503, "MLFLOW_TRACKING_URI is not set: Podium cannot decide")
    try:
        return jsonify(svc.workflow.decide(request_id, g.actor, approve, note,
                                           evidence=evidence))
    except NotAllowed as exc:
        return error(403, str(exc))
    except DecisionConflict as exc:
        return error(409, str(exc))
    except DecisionRefused as exc:
        return error(422, f"{exc}: send {{\"reason\": \"...\"}}")


@bp.post("/requests/<int:request_id>/approve")
def approve(request_id: int):
    return _decide(request_id, True)


@bp.post("/requests/<int:request_id>/reject")
def reject(request_id: int):
    return _decide(request_id, False)


@bp.post("/models/<model>/rollback")
def rollback(model: str):
    """Queue a rollback to a former champion; 202 with the request to follow."""
    svc = services()
    if svc.registry is None:
        return error(503, "MLFLOW_TRACKING_URI is not set: Podium cannot roll back")
    try:
        validate.clean_text(model, "model", max_len=validate.MAX_NAME, status=400)
        doc = validate.body_object(request)
        to = validate.version(doc, "to") if doc.get("to") is not None else None
    except PayloadError as exc:
        return error(exc.status, str(exc))
    try:
        out = svc.workflow.request_rollback(model, g.actor, to)
    except NotAllowed as exc:
        return error(403, str(exc))
    except RollbackRefused as exc:
        return error(exc.status, str(exc))
    return jsonify(out), 202
