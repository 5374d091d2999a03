"""Logging in with an API token (local use) and out. Behind a single-sign-on proxy nobody
needs this page: the proxy's header names the person on every request."""

from __future__ import annotations

import logging

from flask import current_app, g, redirect, request, session

from webhook_server.store import sessions
from webhook_server.web.auth_limit import message
from webhook_server.web.ui import security
from webhook_server.web.ui.web import bp, login_page, services, ui_state

log = logging.getLogger(__name__)


@bp.get("/login")
def login():
    if g.actor is not None:
        return redirect(security.safe_next(request.args.get("next")), 303)
    return login_page(200, nxt=request.args.get("next"))


@bp.post("/login")
def login_post():
    offered = (request.form.get("token") or "").strip()
    nxt = request.form.get("next")
    if not services().settings.api_tokens():
        return login_page(401, "token login is off: no API token is configured "
                               "(PODIUM_API_TOKEN, PODIUM_API_TOKENS or PODIUM_API_TOKENS_FILE)",
                          nxt)
    limiter = current_app.extensions["podium.auth_limit"]
    if (wait := limiter.retry_after(request.remote_addr)) is not None:  # before comparing
        page, status = login_page(429, message(wait), nxt)
        return page, status, {"Retry-After": str(wait[0])}
    found = security.check_token(ui_state(), offered) if offered else None
    if found is None:
        limiter.failed(request.remote_addr)
        log.info("ui: a login with an invalid token from %s", request.remote_addr)
        return login_page(401, "that token is not valid", nxt)
    name, token_digest = found
    with services().store.tx() as conn:
        session_id = sessions.create(conn, name, token_digest,
                                     services().settings.ui_session_hours * 3600)
    session.clear()  # a new session: nothing from before the login carries over
    session.permanent = True
    session["sid"] = session_id
    security.csrf_token(session)
    log.info("ui: ui:%s logged in", name)
    return redirect(security.safe_next(nxt), 303)


@bp.post("/logout")
def logout():
    """Ends the session in the store: a copy of the cookie opens nothing afterwards."""
    session_id = session.get("sid")
    if isinstance(session_id, str):
        with services().store.tx() as conn:
            sessions.end(conn, session_id)
    session.clear()
    return redirect("/ui/login", 303)
