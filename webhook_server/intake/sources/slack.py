"""Slack interactivity: verify the signed raw body, parse the ``payload`` form field.

Only Approve / Reject button clicks (``block_actions``, read in ``slack_actions``) and the
reject-reason modal (``view_submission``, read in ``slack_modal``) mean anything to Podium;
everything else is refused with the reason. Identity is Slack's ``user.id`` and
``team.id``, never names.
"""

from __future__ import annotations

from slack_sdk.signature import Clock, SignatureVerifier

from webhook_server.intake.sources import secret_list
from webhook_server.intake.sources.errors import (
    MALFORMED,
    MISMATCH,
    MISSING,
    UNCONFIGURED,
    PayloadError,
    SignatureError,
)
from webhook_server.intake.sources.slack_actions import (
    SlackAction,
    button_click,
    interaction_payload,
)
from webhook_server.intake.sources.slack_modal import modal_submission
from webhook_server.intake.sources.window import check_window
from webhook_server.intake.validate import ValidationError, digits

__all__ = ["SlackAction", "SlackSource"]

STALE_MESSAGE = "stale request: timestamp is {skew:.0f} s from now (limit {limit} s)"


class SlackSource:
    """``signing_secret`` may list several secrets (a list, or comma-separated: the current
    and the previous one while rotating); a click signed with any of them verifies.
    ``team_id`` is the one workspace whose clicks count: without it every click is refused."""

    def __init__(self, signing_secret: str | list[str] | None, *, team_id: str | None = None,
                 tolerance_s: int = 300, clock: Clock | None = None) -> None:
        self.team_id = team_id
        self.tolerance_s = tolerance_s
        self.clock = clock or Clock()
        self.verifiers = [SignatureVerifier(secret, clock=self.clock)
                          for secret in secret_list(signing_secret)]

    def verify(self, body: bytes, headers) -> None:
        if not self.verifiers:
            raise SignatureError("Slack interactions are disabled: SLACK_SIGNING_SECRET is "
                                 "not set", UNCONFIGURED)
        timestamp = headers.get("X-Slack-Request-Timestamp")
        signature = headers.get("X-Slack-Signature")
        if not timestamp:
            raise SignatureError("missing X-Slack-Request-Timestamp header", MISSING)
        if not signature:
            raise SignatureError("missing X-Slack-Signature header", MISSING)
        try:
            stamp = digits(timestamp, "X-Slack-Request-Timestamp", what="a Unix timestamp")
        except ValidationError as exc:
            raise SignatureError(str(exc), MALFORMED) from None
        check_window(stamp, self.clock.now(), self.tolerance_s, message=STALE_MESSAGE)
        if not signature.startswith("v0=") or len(signature) != 67:
            raise SignatureError("X-Slack-Signature is not a v0 signature "
                                 "(v0= and 64 hex digits)", MALFORMED)
        matched = False
        for verifier in self.verifiers:  # every secret is tried: no early exit
            matched |= verifier.is_valid(body, timestamp, signature)
        if not matched:
            raise SignatureError("X-Slack-Signature does not match the body", MISMATCH)

    def parse(self, body: bytes) -> SlackAction:
        payload = interaction_payload(body)
        kind = payload.get("type")
        if kind == "view_submission":
            return modal_submission(payload)
        if kind != "block_actions":
            shown = repr(kind[:40]) if isinstance(kind, str) else type(kind).__name__
            raise PayloadError(f"unsupported interaction type {shown}; "
                               "Podium handles block_actions (button clicks)")
        return button_click(payload)

    def team_refusal(self, action: SlackAction) -> str | None:
        """Why a click may not decide here (None: it may). Both the workspace the click
        came from (``team.id``) and the clicker's own (``user.team_id``) must be the
        configured SLACK_TEAM_ID."""
        if not self.team_id:
            return ("SLACK_TEAM_ID is not set: Podium cannot tell which workspace may "
                    "decide, so no click is accepted")
        if action.team != self.team_id:
            return f"workspace {action.team} is not allowed to decide here"
        if action.user_team is not None and action.user_team != self.team_id:
            return (f"user {action.user} belongs to workspace {action.user_team}, which is "
                    "not allowed to decide here")
        return None

    def team_allowed(self, action: SlackAction) -> bool:
        return self.team_refusal(action) is None
