"""Logging in with an API token (local use) and out. Behind a single-sign-on proxy nobody
needs this page: the proxy's header names the person on every request."""

from __future__ import annotations

import logging

from flask import g, redirect, request, session

from webhook_server.ui import security
from webhook_server.ui.web import bp, login_page, services, ui_state

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
    found = security.check_token(ui_state(), offered) if offered else None
    if found is None:
        log.info("ui: a login with an invalid token from %s", request.remote_addr)
        return login_page(401, "that token is not valid", nxt)
    name, token_digest = found
    session.clear()  # a new session: nothing from before the login carries over
    session.permanent = True
    session.update({"name": name, "token": token_digest, "login_at": security.now()})
    security.csrf_token(session)
    log.info("ui: ui:%s logged in", name)
    return redirect(security.safe_next(nxt), 303)


@bp.post("/logout")
def logout():
    session.clear()
    return redirect("/ui/login", 303)
