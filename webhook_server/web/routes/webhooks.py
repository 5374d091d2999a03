"""POST /webhooks/mlflow and /webhooks/databricks: verify, parse, store, answer."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from webhook_server.core import logs
from webhook_server.intake.sources import PayloadError, SignatureError
from webhook_server.store import StoreUnavailable
from webhook_server.web.routes import count_rejected, error, services
from webhook_server.web.traced import annotate

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _json_content_type() -> bool:
    return request.mimetype == "application/json"


def _reject_signature(source: str, exc: SignatureError):
    log.warning("rejected %s delivery from %s: %s", source, request.remote_addr, exc)
    count_rejected(source, exc.reason)
    return error(401, str(exc))


def _intake(source: str, delivery_id: str, body: bytes, parse):
    annotate(delivery_id=delivery_id, source=source)
    with logs.bind(delivery_id=delivery_id):
        return _record(source, delivery_id, body, parse)


def _record(source: str, delivery_id: str, body: bytes, parse):
    svc = services()
    try:
        delivery = parse()
    except PayloadError as exc:
        try:
            svc.intake.record_invalid(source, delivery_id, body, str(exc))
        except StoreUnavailable:
            log.exception("store unavailable while recording an invalid delivery")
        return error(exc.status, str(exc), delivery_id=delivery_id)
    try:
        result = svc.intake.record(delivery)
    except StoreUnavailable as exc:
        log.error("store unavailable, %s delivery %s not accepted: %s", source, delivery_id, exc)
        return error(503, "cannot store the delivery right now; retry later")
    annotate(request_id=result.request_id)
    log.info("%s delivery %s (%s): %s%s", source, delivery_id, delivery.event_name,
             result.status, " (duplicate)" if result.duplicate else "",
             extra={"request_id": result.request_id} if result.request_id else None)
    return jsonify(result.as_json()), 200


@bp.post("/mlflow")
def mlflow():
    if not _json_content_type():
        return error(415, f"expected Content-Type application/json, got {request.mimetype!r}")
    body = request.get_data(cache=False)
    src = services().mlflow_source
    try:
        delivery_id = src.verify(body, request.headers)
    except SignatureError as exc:
        return _reject_signature("mlflow", exc)
    sent_at = src.sent_at(request.headers)  # a retried delivery is judged as of then
    return _intake("mlflow", delivery_id, body, lambda: src.parse(delivery_id, body, sent_at))


@bp.post("/databricks")
def databricks():
    if not _json_content_type():
        return error(415, f"expected Content-Type application/json, got {request.mimetype!r}")
    body = request.get_data(cache=False)
    src = services().databricks_source
    try:
        src.verify(body, request.headers)
        delivery_id = src.delivery_id(body)
    except SignatureError as exc:
        return _reject_signature("databricks", exc)
    except PayloadError as exc:  # signed, but no usable delivery id: nothing to key it on
        return error(exc.status, str(exc))
    return _intake("databricks", delivery_id, body, lambda: src.parse(delivery_id, body))
