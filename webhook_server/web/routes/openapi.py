"""GET /api/v1/openapi.json: the OpenAPI 3 document of the HTTP API (no token needed).

Every ``/api/v1`` route is described with its bodies, its answers and the error schema
``{"error": "..."}``; the tests fuzz the API against this document with schemathesis, so a
route that answers something the document does not say fails them.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from flask import Blueprint, jsonify

from webhook_server import __version__
from webhook_server.intake import validate
from webhook_server.intake.events import TARGETS
from webhook_server.store import states

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

_STATES = [states.QUEUED, states.CHECKING, states.COMPARING, states.SHADOWING,
           states.AWAITING_APPROVAL, states.PROMOTING, *states.TERMINAL]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


_ERRORS = {
    400: "Malformed input: not JSON, nested too deep, a bad query parameter or header",
    401: "No bearer token, or not a valid one",
    403: "The token's actor may not do this",
    404: "No such request, model or delivery",
    409: "Conflicts with the current state (already decided, no former champion, ...)",
    413: "Body larger than PODIUM_MAX_BODY_BYTES",
    415: "A body that is not declared as application/json",
    422: "Well-formed JSON with a missing field or a field of the wrong type or value",
    429: "Too many failed bearer tokens from this address or in total: wait Retry-After "
         "seconds (a right token never counts)",
    503: "The store or MLflow cannot be reached right now; retry later",
}


def _answers(ok: dict[int, tuple[str, str]], errors: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, (description, schema) in ok.items():
        out[str(status)] = {"description": description,
                            "content": {"application/json": {"schema": _ref(schema)}}}
    for status in (*errors, 429) if 401 in errors else errors:  # guessing is limited
        out[str(status)] = {"$ref": f"#/components/responses/E{status}"}
    return out


def _body(schema: str, required: bool) -> dict[str, Any]:
    return {"required": required,
            "content": {"application/json": {"schema": _ref(schema)}}}


_REQUEST_ID = {"name": "request_id", "in": "path", "required": True,
               "schema": {"type": "integer", "format": "int64", "minimum": 1,
                          "maximum": validate.MAX_ID}}
_DECIDE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 503)
_EVIDENCE = {"type": "string", "nullable": True, "pattern": "^[0-9a-f]{64}$",
             "description": "the evidence_sha256 you looked at; 409 when it is no longer "
                            "current"}


_TEXT = {"type": "string", "maxLength": validate.MAX_TEXT}


def _request_schemas() -> dict[str, Any]:
    """The error answer and a request as the API shows it."""
    return {
        "Error": {"type": "object", "required": ["error"],
                  "properties": {"error": {"type": "string"}},
                  "description": "Every error answer; some add context fields "
                                 "(e.g. delivery_id)."},
        "HistoryLine": {
            "type": "object", "required": ["at", "to", "actor"],
            "properties": {"at": _nullable({"type": "string", "format": "date-time"}),
                           "from": _nullable({"type": "string"}),
                           "to": {"type": "string"}, "actor": {"type": "string"},
                           "note": _nullable({"type": "string"}),
                           "seconds": _nullable({"type": "number", "description":
                                                 "how long the request stayed after this "
                                                 "line (null after the last)"})}},
        "Request": {
            "type": "object",
            "required": ["id", "model", "version", "raw_target", "origin", "state"],
            "properties": {
                "id": {"type": "integer"}, "model": {"type": "string"},
                "version": {"type": "string"},
                "target": _nullable({"type": "string", "enum": list(TARGETS)}),
                "raw_target": {"type": "string"}, "origin": {"type": "string"},
                "state": {"type": "string", "enum": _STATES},
                "reason": _nullable({"type": "string"}),
                "requested_by": _nullable({"type": "string"}),
                "decided_by": _nullable({"type": "string"}),
                "comment": _nullable({"type": "string"}),
                "requesters": {"type": "array", "items": {"type": "string"},
                               "description": "who counts as having asked (none may "
                                              "approve): the authenticated requester, or "
                                              "every identity the registry names"},
                "model_sha256": _nullable({"type": "string", "pattern": "^[0-9a-f]{64}$",
                                           "description": "digest of the model files "
                                                          "that were checked"}),
                "bundle_uri": _nullable({"type": "string", "description": "where the "
                                         "evidence bundle of the decision is (podium "
                                         "verify reads it)"}),
                "bundle_sha256": _nullable({"type": "string", "pattern": "^[0-9a-f]{64}$",
                                            "description": "digest of the evidence "
                                                           "bundle"}),
                "evidence_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$",
                                    "description": "what an approval approves: send it "
                                                   "back as `evidence`"},
                "created_at": _nullable({"type": "string", "format": "date-time"}),
                "updated_at": _nullable({"type": "string", "format": "date-time"}),
                "history": {"type": "array", "items": _ref("HistoryLine")},
                "stages": {"type": "object", "additionalProperties": {"type": "number"},
                           "description": "seconds spent in each state so far"}}},
        "RequestList": {"type": "object", "required": ["requests"],
                        "properties": {"requests": {"type": "array",
                                                    "items": _ref("Request")}}},
    }


def _intake_schemas() -> dict[str, Any]:
    """Asking for a request, and what the intake answers."""
    return {
        "NewRequest": {
            "type": "object", "required": ["model", "version", "target"],
            "properties": {
                "model": {"type": "string", "minLength": 1, "maxLength": validate.MAX_NAME,
                          "pattern": r"\S"},
                "version": {"oneOf": [
                    {"type": "string", "pattern": r"^[0-9]{1,20}$"},
                    {"type": "integer", "minimum": 0, "maximum": validate.MAX_ID}]},
                "target": {"type": "string", "minLength": 1, "maxLength": 200,
                           "pattern": r"\S",
                           "description": f"One of {', '.join(TARGETS)} (any case); "
                                          "another value is answered 422"},
                "comment": _nullable(_TEXT)},
            "description": "Who asks is the token's actor, never a body field."},
        "IntakeResult": {
            "type": "object", "required": ["delivery", "status", "duplicate"],
            "properties": {
                "delivery": {"type": "integer"}, "status": {"type": "string"},
                "duplicate": {"type": "boolean"}, "request_id": {"type": "integer"},
                "already_open": {"type": "boolean"},
                "cancelled": {"type": "array", "items": {"type": "integer"}},
                "detail": {"type": "string"}}},
    }


def _decision_schemas() -> dict[str, Any]:
    """Approvals, rejections, rollbacks, replays and this document."""
    return {
        "Approval": {"type": "object",
                     "properties": {"note": _nullable(_TEXT), "evidence": _EVIDENCE}},
        "Rejection": {"type": "object", "required": ["reason"],
                      "properties": {"reason": {**_TEXT, "minLength": 1, "pattern": r"\S"},
                                     "evidence": _EVIDENCE},
                      "description": "Why the version must not be promoted (required)."},
        "Decision": {
            "type": "object", "required": ["request", "state"],
            "properties": {"request": {"type": "integer"}, "state": {"type": "string"},
                           "decided_by": {"type": "string"}, "reason": {"type": "string"},
                           "approvals": {"type": "array", "items": {"type": "string"}}}},
        "RollbackOrder": {
            "type": "object",
            "properties": {"to": {"oneOf": [
                {"type": "string", "pattern": r"^[0-9]{1,20}$"},
                {"type": "integer", "minimum": 0, "maximum": validate.MAX_ID}],
                "description": "A former champion; the one before the current by default"}}},
        "Rollback": {
            "type": "object", "required": ["request", "model", "to", "state"],
            "properties": {"request": {"type": "integer"}, "model": {"type": "string"},
                           "from": _nullable({"type": "string"}), "to": {"type": "string"},
                           "state": {"type": "string"}}},
        "Replay": {
            "type": "object", "required": ["delivery", "action"],
            "properties": {
                "delivery": {"type": "integer"},
                "action": {"type": "string", "enum": ["requeued", "re-run"]},
                "jobs": {"type": "array", "items": {"type": "string"}},
                "request": {"type": "object"},
                "new_delivery": _ref("IntakeResult")}},
        "Verification": {
            "type": "object", "required": ["request", "verified", "tampered", "differences"],
            "properties": {
                "request": {"type": "integer"}, "verified": {"type": "boolean"},
                "tampered": {"type": "boolean"},
                "differences": {"type": "array", "items": {"type": "string"}},
                "bundle_uri": _nullable({"type": "string"}),
                "bundle_sha256": _nullable({"type": "string"}),
                "recorded_checks": {"type": "array", "items": {"type": "string"},
                                    "description": "checks kept as recorded: their inputs "
                                                   "are not in the bundle"},
                "recorded_live": _nullable({
                    "type": "object", "description": "the live evidence's deciding look "
                    "(comparison.live), kept as recorded: its labels are in the store, not "
                    "in the bundle"})}},
        "OpenAPI": {"type": "object", "required": ["openapi", "paths"]},
    }


def _request_paths() -> dict[str, Any]:
    """Listing, creating and reading requests."""
    return {
        "/api/v1/requests": {
            "get": {
                "operationId": "listRequests", "summary": "Requests, newest first",
                "parameters": [
                    {"name": "model", "in": "query", "schema": {"type": "string"}},
                    {"name": "state", "in": "query",
                     "description": f"One of {', '.join(_STATES)} (another value matches "
                                    "nothing)",
                     "schema": {"type": "string"}},
                    {"name": "limit", "in": "query",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                "default": 100}}],
                "responses": _answers({200: ("Matching requests", "RequestList")},
                                      (400, 401))},
            "post": {
                "operationId": "createRequest",
                "summary": "Ask for a version to move to a target (as the token's actor)",
                "parameters": [{"name": "Idempotency-Key", "in": "header",
                                "schema": {"type": "string", "minLength": 1,
                                           "maxLength": 255, "pattern": r"^[!-~]+$"},
                                "description": "A retried create with the same key "
                                               "answers the first result (200)"}],
                "requestBody": _body("NewRequest", True),
                "responses": _answers({201: ("The request was recorded", "IntakeResult"),
                                       200: ("A retry, or a request already open",
                                             "IntakeResult")},
                                      (400, 401, 413, 415, 422, 503))}},
        "/api/v1/requests/{request_id}": {
            "get": {
                "operationId": "getRequest", "summary": "One request with its history",
                "parameters": [_REQUEST_ID],
                "responses": _answers({200: ("The request", "Request")}, (400, 401, 404))}},
        "/api/v1/requests/{request_id}/verify": {
            "get": {
                "operationId": "verifyRequest",
                "summary": "The decision computed again from its evidence bundle alone "
                           "(podium verify): verified, or each difference / tampered",
                "parameters": [_REQUEST_ID],
                "responses": _answers({200: ("The verification", "Verification")},
                                      (400, 401, 404, 503))}},
    }


def _action_paths() -> dict[str, Any]:
    """Deciding, rolling back, replaying; this document."""
    return {
        "/api/v1/requests/{request_id}/approve": {
            "post": {
                "operationId": "approveRequest",
                "summary": "Approve as the token's actor (counts toward the quorum)",
                "parameters": [_REQUEST_ID], "requestBody": _body("Approval", False),
                "responses": _answers({200: ("The decision so far", "Decision")},
                                      _DECIDE_ERRORS)}},
        "/api/v1/requests/{request_id}/reject": {
            "post": {
                "operationId": "rejectRequest",
                "summary": "Reject as the token's actor; a reason is required",
                "parameters": [_REQUEST_ID], "requestBody": _body("Rejection", True),
                "responses": _answers({200: ("The decision", "Decision")},
                                      _DECIDE_ERRORS)}},
        "/api/v1/models/{model}/rollback": {
            "post": {
                "operationId": "rollbackModel",
                "summary": "Queue a rollback of the champion to a former champion",
                "parameters": [{"name": "model", "in": "path", "required": True,
                                "schema": {"type": "string", "minLength": 1,
                                           "maxLength": validate.MAX_NAME}}],
                "requestBody": _body("RollbackOrder", False),
                "responses": _answers({202: ("The rollback request to follow", "Rollback")},
                                      (400, 401, 403, 404, 409, 413, 415, 422, 503))}},
        "/api/v1/deliveries/{ref}/replay": {
            "post": {
                "operationId": "replayDelivery",
                "summary": "Re-run a stored delivery, or requeue its dead jobs",
                "parameters": [{"name": "ref", "in": "path", "required": True,
                                "description": "The sender's delivery id or Podium's "
                                               "delivery number",
                                "schema": {"type": "string", "minLength": 1,
                                           "maxLength": 255}}],
                "responses": _answers({200: ("What was done", "Replay")},
                                      (400, 401, 403, 404, 409, 422, 503))}},
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": _answers({200: ("The OpenAPI document", "OpenAPI")}, ())}},
    }


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once; callers get a copy)."""
    schemas = {**_request_schemas(), **_intake_schemas(), **_decision_schemas()}
    responses = {f"E{status}": {"description": description,
                                "content": {"application/json": {"schema": _ref("Error")}}}
                 for status, description in _ERRORS.items()}
    paths = {**_request_paths(), **_action_paths()}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Podium API", "version": __version__,
                 "description": "Automated, audited model promotions for the MLflow "
                                "model registry. Every route but this document needs "
                                "`Authorization: Bearer <token>`; the token names the "
                                "actor. Errors are `{\"error\": \"...\"}`."},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "An API token (PODIUM_API_TOKEN "
                                                          "or a named token)"}},
            "schemas": schemas, "responses": responses},
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(copy.deepcopy(document()))
