"""Slack modals: the reason a person gives when rejecting a request. Its submission is read
by ``webhook_server.intake.sources.slack_modal``, which owns the field ids."""

from __future__ import annotations

from typing import Any

from webhook_server.contract import SLACK_REJECT_VIEW
from webhook_server.intake.sources.slack_modal import REASON_ACTION, REASON_BLOCK
from webhook_server.store.records import Request


def reject_reason(req: Request) -> dict[str, Any]:
    """The modal Reject opens: one required text field; the request id and the evidence
    digest ride along in ``private_metadata`` (Slack returns it on submission)."""
    title = f"{req.model} v{req.version}"
    rollback = req.origin == "rollback"  # Dismiss: the champion stays
    return {
        "type": "modal", "callback_id": SLACK_REJECT_VIEW,
        "private_metadata": f"{req.id}:{req.evidence_digest()}",
        "title": {"type": "plain_text",
                  "text": "Dismiss this rollback" if rollback else "Reject this version"},
        "submit": {"type": "plain_text", "text": "Dismiss" if rollback else "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "plain_text", "text": (
                f"{title[:140]} will not be champion again; the champion stays."
                if rollback else f"{title[:140]} will not be promoted.")}},
            {"type": "input", "block_id": REASON_BLOCK,
             "label": {"type": "plain_text", "text": "Why?"},
             "element": {"type": "plain_text_input", "action_id": REASON_ACTION,
                         "multiline": True, "min_length": 3, "max_length": 500}},
        ],
    }

