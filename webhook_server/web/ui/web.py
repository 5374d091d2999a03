"""The ``ui`` blueprint and what every page shares: who is asking, the CSRF check, the
services, rendering a page or an error page.

Every POST carries the session's CSRF token (checked before anything else); every page
needs an identity (``security.identify``): without one the answer is the login page with
401. The view modules (``login``, ``requests_page``, ``model_page``, ``operations_page``)
add their routes to ``bp``; ``webhook_server.web.ui.init_app`` registers it.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request, session

from webhook_server.core import scrub
from webhook_server.core.identity import person
from webhook_server.service.services import Services
from webhook_server.web.ui import security
from webhook_server.web.ui.access import policy

bp = Blueprint("ui", __name__, url_prefix="/ui", template_folder="templates",
               static_folder="static")
OPEN_ENDPOINTS = frozenset({"ui.static", "ui.login", "ui.login_post", "ui.logout"})


def services() -> Services:
    return current_app.extensions["podium"]


def ui_state() -> security.UiState:
    return current_app.extensions["podium.ui"]


def page(template: str, code: int = 200, **context):
    return render_template(f"ui/{template}", **context), code


def error_page(status: int, message: str):
    """An error as a page (the API answers JSON; the page answers HTML)."""
    return page("error.html", status, status=status, message=message)


def login_page(status: int = 401, message: str | None = None, nxt: str | None = None):
    """The login form; after logging in, back to ``nxt`` (default: the page asked for)."""
    nxt = nxt or (request.full_path if request.method == "GET" else None)
    return page("login.html", status, message=message, next=security.safe_next(nxt),
                token_login=bool(services().settings.api_tokens()),
                header=_header_hint())


def _header_hint() -> str | None:
    s = services().settings
    return s.ui_trusted_header if s.ui_proxies() else None


@bp.before_request
def _csrf_then_identity():
    if request.endpoint == "ui.static":
        return None
    if request.method == "POST" and not security.same_site_form(
            request.headers, request.host, services().settings.public_url):
        return error_page(403, "refused: this form was sent from another site (the "
                               "browser's Origin / Sec-Fetch-Site headers). Nothing was "
                               "changed.")
    if request.method == "POST" and not security.csrf_ok(session, request.form):
        return error_page(403, "refused: this form has no valid CSRF token (forged, or the "
                               "page is older than your session); reload the page and try "
                               "again. Nothing was changed.")
    try:
        g.actor = security.identify(services().settings, ui_state(), request, session,
                                   services().store)
    except security.BadIdentity as exc:
        return error_page(400, str(exc))
    if g.actor is None and request.endpoint not in OPEN_ENDPOINTS:
        return login_page()
    return None


@bp.app_template_filter("scrubbed")
def _scrubbed(text):
    """Stored text of a model or a person on the page: secrets redacted, capped."""
    return scrub.clean(text) if text else text


@bp.context_processor
def _shared():
    actor, known = g.get("actor"), policy(services())
    return {"actor": actor, "person": person(known, actor) if known and actor else None,
            "csrf_token": security.csrf_token(session)}
