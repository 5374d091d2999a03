"""The Flask app factory. Nothing happens at import time."""

from __future__ import annotations

import dataclasses
import logging

from flask import Flask, Request, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.routing import IntegerConverter, ValidationError

from webhook_server.core.settings import Settings
from webhook_server.intake import validate
from webhook_server.intake.sources.mlflow import UNSIGNED_BANNER
from webhook_server.service.services import Services, build
from webhook_server.web import metrics, traced, ui
from webhook_server.web.auth_limit import AuthLimiter
from webhook_server.web.routes import api, error, health, openapi, slack, webhooks

log = logging.getLogger(__name__)


class BoundedInt(IntegerConverter):
    """``<int:...>`` URL parts that fit a BIGINT id: larger numbers are no route (404),
    not an overflow in the database."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", validate.MAX_ID)
        super().__init__(map, *args, **kwargs)

    def to_python(self, value: str):
        if len(value) > validate.MAX_DIGITS:
            raise ValidationError()
        return super().to_python(value)


class DepthLimitedJSON(DefaultJSONProvider):
    """``request.get_json()`` parses with ``validate.parse_json``: depth-limited, no NaN;
    a failure is a ValueError, so ``silent=True`` gives None and otherwise Flask answers
    400."""

    def loads(self, s, **kwargs):
        return validate.parse_json(s)


class PodiumRequest(Request):
    def on_json_loading_failed(self, e: ValueError | None):
        """``request.get_json()`` on a bad body: 400 with the reason (Flask hides it)."""
        if isinstance(e, validate.ValidationError):
            raise BadRequest(str(e))
        return super().on_json_loading_failed(e)


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    if services is not None and settings is not None and services.settings is not settings:
        services = dataclasses.replace(services, settings=settings)
    settings = settings or (services.settings if services else Settings.from_env())
    svc = services or build(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = DepthLimitedJSON(app)
    app.request_class = PodiumRequest
    app.url_map.converters["int"] = BoundedInt  # before the blueprints add their rules
    app.extensions["podium"] = svc
    app.extensions["podium.metrics"] = metrics.make_registry(
        svc.store, lambda model: svc.policy.for_model(model).approval.expiry_hours,
        lambda model: _live_max_days(svc, model))
    app.extensions["podium.auth_limit"] = AuthLimiter(settings)  # failed tokens/logins
    traced.init_app(app)  # a server span per request, when OTEL_* turn tracing on
    for bp in (webhooks.bp, slack.bp, api.bp, openapi.bp, health.bp):
        app.register_blueprint(bp)
    ui.init_app(app, settings)  # /ui/: the web page
    if svc.mlflow_source.unsigned:
        log.warning("podium: %s", UNSIGNED_BANNER)

    @app.before_request
    def _no_nul_in_the_url():
        """No NUL in query or path values: PostgreSQL text cannot hold it."""
        if not request.query_string and not request.view_args:  # a webhook: nothing to see
            return None
        values = [("query parameter", k, v) for k, v in request.args.items(multi=True)]
        values += [("path segment", k, v) for k, v in (request.view_args or {}).items()
                   if isinstance(v, str)]
        for where, name, value in values:
            if "\x00" in value or "\x00" in name:
                return _error(400, f"{where} {name[:40]!r} contains a NUL character")
        return None

    def _error(status: int, message: str):
        """The page answers errors as HTML pages, every other route as JSON."""
        return ui.error_page(status, message) if ui.owns(request.path) else error(status,
                                                                                  message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.code == 413:
            return _error(413, f"body over {settings.max_body_bytes} bytes")
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        if ui.owns(request.path):
            return ui.error_page(500, "internal error; nothing was changed, retry later")
        return error(500, "internal error; the delivery was not accepted, retry later")

    return app


def _live_max_days(svc: Services, model: str) -> float | None:
    """The policy's ``comparison.live.max_days`` for ``model`` (None: no live evidence)."""
    live = svc.policy.for_model(model).comparison.live
    return None if live is None else live.max_days
