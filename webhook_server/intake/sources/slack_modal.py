"""The reject-reason modal, as Slack returns it: a ``view_submission`` -> a rejection with
its reason. ``webhook_server.adapters.notify.modals`` builds the modal with the same field ids."""

from __future__ import annotations

from typing import Any

from webhook_server.contract import SLACK_REJECT_VIEW
from webhook_server.intake.sources.errors import PayloadError
from webhook_server.intake.sources.slack_actions import SlackAction, request_ref, slack_id, who

REASON_BLOCK = REASON_ACTION = "reason"


def submitted_reason(view: dict[str, Any]) -> str | None:
    """The reason typed into the reject modal, from a ``view_submission``."""
    values = ((view.get("state") or {}).get("values") or {})
    field = (values.get(REASON_BLOCK) or {}).get(REASON_ACTION) or {}
    value = field.get("value") if isinstance(field, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def modal_submission(payload: dict) -> SlackAction:
    """The reject modal submitted: a rejection with its reason."""
    view = payload.get("view") if isinstance(payload.get("view"), dict) else {}
    if view.get("callback_id") != SLACK_REJECT_VIEW:
        raise PayloadError("unknown modal: Podium only opens the reject-reason modal")
    request_id, evidence = request_ref(view.get("private_metadata"), "view.private_metadata")
    view_id = slack_id(view.get("id"), "view.id")
    reason = submitted_reason(view)
    if reason is None:
        raise PayloadError("a rejection needs a reason (the modal's field is empty)", 422)
    user_id, team_id, user_team = who(payload)
    return SlackAction(action="reject", request_id=request_id, evidence=evidence,
                       user=user_id,
                       team=team_id, channel=None, message_ts=None,
                       action_ts=f"view-{view_id}", user_team=user_team,
                       reason=reason[:500])
