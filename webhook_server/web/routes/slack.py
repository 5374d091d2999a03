"""POST /slack/interactions: verify the raw body, parse, store a job, answer at once.

Slack wants an answer within 3 seconds; the decision runs in a ``slack_action`` job, which
replies to the clicker with an ephemeral message and updates the request's message. A
Reject click is stored first too, then its reason modal is opened here, before answering
(``approvals.open_modal_now``): the click's trigger expires 3 s after the click.
"""

from __future__ import annotations

import logging

from flask import Blueprint, request

from webhook_server.intake.sources import UNKNOWN_WORKSPACE, PayloadError, SignatureError
from webhook_server.service.approvals import MODAL_GRACE_S, open_modal_now, wants_modal
from webhook_server.store import StoreUnavailable
from webhook_server.web.routes import count_rejected, error, services

log = logging.getLogger(__name__)
bp = Blueprint("slack", __name__, url_prefix="/slack")


@bp.post("/interactions")
def interactions():
    svc = services()
    body = request.get_data(cache=False)  # raw bytes first: the signature covers them
    src = svc.slack_source
    try:
        src.verify(body, request.headers)
    except SignatureError as exc:
        log.warning("rejected Slack interaction from %s: %s", request.remote_addr, exc)
        count_rejected("slack", exc.reason)
        return error(401, str(exc))
    if request.mimetype != "application/x-www-form-urlencoded":
        return error(415, "expected Content-Type application/x-www-form-urlencoded, got "
                          f"{request.mimetype!r}")
    try:
        action = src.parse(body)
    except PayloadError as exc:
        return error(exc.status, str(exc))
    refusal = src.team_refusal(action)
    if refusal is not None:
        log.warning("Slack click by %s of workspace %s refused: %s", action.user,
                    action.team, refusal)
        count_rejected("slack", UNKNOWN_WORKSPACE)
        return error(403, refusal)
    modal = wants_modal(svc, action)
    try:
        pk, duplicate = svc.intake.record_action("slack", action.delivery_id,
                                                 f"slack.{action.action}", body,
                                                 "slack_action", action.as_payload(),
                                                 delay_s=MODAL_GRACE_S if modal else 0)
    except StoreUnavailable as exc:
        log.error("store unavailable, Slack click not recorded: %s", exc)
        return error(503, "cannot record the click right now; try again")
    log.info("slack %s of request %s by %s (delivery %s%s)", action.action, action.request_id,
             action.user, pk, ", replayed" if duplicate else "")
    if modal and not duplicate:
        open_modal_now(svc, f"slack:{pk}", action.as_payload())
    # Slack shows nothing for a 200 with an empty body; the job answers ephemerally.
    return "", 200
