"""GET /healthz (process alive), /readyz (store and MLflow reachable), /metrics."""

from __future__ import annotations

import requests as http
from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from webhook_server.routes import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    svc = services()
    checks: dict[str, str] = {}
    try:
        revision, head = svc.store.revision(), svc.store.head()
        checks["database"] = ("ok" if revision == head
                              else f"schema at {revision}, expected {head}: run migrations")
    except Exception as exc:  # any driver error means "not ready"
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["mlflow"] = _mlflow(svc.settings.mlflow_tracking_uri)
    ready = all(v == "ok" or v.startswith("skipped") for v in checks.values())
    return jsonify({"ready": ready, "checks": checks}), 200 if ready else 503


def _mlflow(uri: str | None) -> str:
    if not uri:
        return "skipped: MLFLOW_TRACKING_URI is unset"
    if not uri.startswith(("http://", "https://")):
        return "skipped: not an HTTP tracking server"
    try:
        resp = http.get(uri.rstrip("/") + "/health", timeout=2)
    except http.RequestException as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok" if resp.ok else f"unhealthy: HTTP {resp.status_code}"


@bp.get("/metrics")
def metrics():
    from flask import current_app

    return Response(generate_latest(current_app.extensions["podium.metrics"]),
                    mimetype=CONTENT_TYPE_LATEST)
