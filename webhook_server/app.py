"""The Flask app factory. Nothing happens at import time."""

from __future__ import annotations

import dataclasses
import logging

from flask import Flask
from werkzeug.exceptions import HTTPException

from webhook_server import metrics
from webhook_server.routes import api, error, health, slack, webhooks
from webhook_server.services import Services, build
from webhook_server.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    if services is not None and settings is not None and services.settings is not settings:
        services = dataclasses.replace(services, settings=settings)
    settings = settings or (services.settings if services else Settings.from_env())
    svc = services or build(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["podium"] = svc
    app.extensions["podium.metrics"] = metrics.make_registry(svc.store)
    for bp in (webhooks.bp, slack.bp, api.bp, health.bp):
        app.register_blueprint(bp)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.code == 413:
            return error(413, f"body over {settings.max_body_bytes} bytes")
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error(500, "internal error; the delivery was not accepted, retry later")

    return app
