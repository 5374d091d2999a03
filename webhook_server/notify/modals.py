"""Slack modals: the reason a person gives when rejecting a request."""

from __future__ import annotations

from typing import Any

from webhook_server.keys import SLACK_REJECT_VIEW

REASON_BLOCK = REASON_ACTION = "reason"


def reject_reason(req: dict[str, Any]) -> dict[str, Any]:
    """The modal Reject opens: one required text field; the request id rides along in
    ``private_metadata`` (Slack returns it on submission)."""
    title = f"{req['model']} v{req['version']}"
    return {
        "type": "modal", "callback_id": SLACK_REJECT_VIEW,
        "private_metadata": str(req["id"]),
        "title": {"type": "plain_text", "text": "Reject this version"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "plain_text",
                                         "text": f"{title[:140]} will not be promoted."}},
            {"type": "input", "block_id": REASON_BLOCK,
             "label": {"type": "plain_text", "text": "Why?"},
             "element": {"type": "plain_text_input", "action_id": REASON_ACTION,
                         "multiline": True, "min_length": 3, "max_length": 500}},
        ],
    }


def submitted_reason(view: dict[str, Any]) -> str | None:
    """The reason typed into ``reject_reason``'s modal, from a ``view_submission``."""
    values = ((view.get("state") or {}).get("values") or {})
    field = (values.get(REASON_BLOCK) or {}).get(REASON_ACTION) or {}
    value = field.get("value") if isinstance(field, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None
