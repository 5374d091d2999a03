"""The web page at /ui/: requests, one request, a model, operations (server-rendered
Jinja templates, one stylesheet, one small script; no build step, nothing from the
internet). ``init_app(app, settings)`` registers it; nothing happens at import."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

log = logging.getLogger(__name__)
PREFIX = "/ui"
RANDOM_KEY = ("PODIUM_UI_SECRET is not set: the web page signs its sessions with a random "
              "key of this `podium serve` (logins end when it restarts; set the same secret "
              "on every node behind one address)")


def owns(path: str) -> bool:
    """Is this path the page's (errors answer HTML there, JSON elsewhere)?"""
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_page(status: int, message: str):
    from webhook_server.web.ui.web import error_page as render

    return render(status, message)


class PageSessions(SecureCookieSessionInterface):
    """The page's signed-cookie sessions. Their cookie's path is the page's, so no other
    route ever receives one: those get Flask's null session at once, instead of a signer
    built and the cookies parsed on every request (the webhooks' hot path)."""

    def open_session(self, app, request):
        return super().open_session(app, request) if owns(request.path) else None


def init_app(app: Flask, settings) -> None:
    from webhook_server.web.ui import login, model_page, operations_page, requests_page  # noqa: F401
    from webhook_server.web.ui.security import HEADERS, UiState
    from webhook_server.web.ui.web import bp

    app.secret_key = settings.ui_key()
    app.session_interface = PageSessions()
    app.config.update(
        SESSION_COOKIE_NAME="podium_ui", SESSION_COOKIE_PATH=PREFIX,
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=(settings.public_url or "").startswith("https://"),
        SESSION_REFRESH_EACH_REQUEST=False,  # a login lasts PODIUM_UI_SESSION_HOURS from login
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.ui_session_hours))
    app.extensions["podium.ui"] = UiState.from_settings(settings)
    app.register_blueprint(bp)
    if settings.ui_key_is_random:
        log.warning("podium: %s", RANDOM_KEY)

    @app.after_request
    def _security_headers(response):
        if owns(request.path):
            response.headers.update(HEADERS)
            if request.endpoint != "ui.static":
                response.headers["Cache-Control"] = "no-store"
        return response
