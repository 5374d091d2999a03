"""GET /healthz (process alive), /readyz (store and MLflow reachable), /metrics.

``/readyz`` asks MLflow at most once every ``MLFLOW_CHECK_TTL_S`` seconds per process: a
probe every second from a load balancer must not become a request a second to MLflow.
"""

from __future__ import annotations

import threading
import time

import requests as http
from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from webhook_server.intake.sources.mlflow import UNSIGNED_BANNER
from webhook_server.web.routes import (
    bearer_matches,
    count_failure,
    error,
    services,
    too_many_failures,
)

bp = Blueprint("health", __name__)
MLFLOW_CHECK_TTL_S = 5.0


class CachedCheck:
    """The last answer of ``check(key)`` for ``ttl_s`` seconds (one per app)."""

    def __init__(self, check, ttl_s: float = MLFLOW_CHECK_TTL_S,
                 clock=time.monotonic) -> None:
        self.check, self.ttl_s, self.clock = check, ttl_s, clock
        self._lock = threading.Lock()
        self._answer: tuple[str | None, float, str] | None = None  # key, at, answer

    def __call__(self, key: str | None) -> str:
        now = self.clock()
        with self._lock:
            if (self._answer and self._answer[0] == key
                    and now - self._answer[1] < self.ttl_s):
                return self._answer[2]
        answer = self.check(key)
        with self._lock:
            self._answer = (key, self.clock(), answer)
        return answer


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    svc = services()
    checks: dict[str, str] = {}
    try:
        revision, head = svc.store.revision(), svc.store.head()
        if revision == head:
            checks["database"] = "ok"
        elif svc.store.knows(revision):
            checks["database"] = f"schema at {revision}, expected {head}: run migrations"
        else:  # an older pod during a rollout: a newer release migrated the store
            checks["database"] = (f"schema at {revision}, newer than this Podium knows "
                                  f"({head}): a newer release migrated the store")
    except Exception as exc:  # any driver error means "not ready"
        checks["database"] = f"unreachable: {type(exc).__name__}"
    cached = current_app.extensions.setdefault("podium.readyz.mlflow",
                                               CachedCheck(lambda uri: _mlflow(uri)))
    checks["mlflow"] = cached(svc.settings.mlflow_tracking_uri)
    ready = all(v == "ok" or v.startswith("skipped") for v in checks.values())
    body = {"ready": ready, "checks": checks}
    if svc.mlflow_source.unsigned:
        body["warnings"] = [UNSIGNED_BANNER]
    return jsonify(body), 200 if ready else 503


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
    expected = services().settings.metrics_token
    if expected:  # PODIUM_METRICS_TOKEN: a bearer token, compared in constant time
        scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not offered:
            return error(401, "missing bearer token (PODIUM_METRICS_TOKEN is set)")
        if (refused := too_many_failures()) is not None:
            return refused
        if not bearer_matches(offered, expected):
            count_failure()
            return error(401, "invalid bearer token")
    return Response(generate_latest(current_app.extensions["podium.metrics"]),
                    mimetype=CONTENT_TYPE_LATEST)
