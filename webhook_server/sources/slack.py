"""Slack interactivity: verify the signed raw body, parse the ``payload`` form field.

Only Approve / Reject button clicks (``block_actions``) mean anything to Podium; everything
else is refused with the reason. Identity is Slack's ``user.id`` and ``team.id``, never names.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

from webhook_server.keys import SLACK_APPROVE as APPROVE
from webhook_server.keys import SLACK_REJECT as REJECT
from webhook_server.sources import (
    MALFORMED,
    MISMATCH,
    MISSING,
    STALE,
    UNCONFIGURED,
    PayloadError,
    SignatureError,
    secret_list,
)
from webhook_server.sources._common import is_number
from webhook_server.validate import MAX_ID, ValidationError, digits, parse_json

ACTIONS = {APPROVE: "approve", REJECT: "reject"}


@dataclass(frozen=True)
class SlackAction:
    action: str  # approve | reject
    request_id: int
    user: str
    team: str
    channel: str | None
    message_ts: str | None
    action_ts: str
    user_team: str | None = None  # payload.user.team_id, when Slack sends it
    trigger_id: str | None = None  # opens the reason modal (valid for 3 s)
    reason: str | None = None  # typed into the reject modal

    @property
    def delivery_id(self) -> str:
        return f"{self.team}:{self.user}:{self.action_ts}"

    def as_payload(self) -> dict:
        return {"action": self.action, "request_id": self.request_id, "user": self.user,
                "team": self.team, "channel": self.channel, "message_ts": self.message_ts,
                "action_ts": self.action_ts, "trigger_id": self.trigger_id,
                "reason": self.reason}


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
            digits(timestamp, "X-Slack-Request-Timestamp", what="a Unix timestamp")
        except ValidationError as exc:
            raise SignatureError(str(exc), MALFORMED) from None
        skew = abs(self.clock.now() - int(timestamp))
        if skew > self.tolerance_s:
            raise SignatureError(f"stale request: timestamp is {skew:.0f} s from now "
                                 f"(limit {self.tolerance_s} s)", STALE)
        if not signature.startswith("v0=") or len(signature) != 67:
            raise SignatureError("X-Slack-Signature is not a v0 signature "
                                 "(v0= and 64 hex digits)", MALFORMED)
        matched = False
        for verifier in self.verifiers:  # every secret is tried: no early exit
            matched |= verifier.is_valid(body, timestamp, signature)
        if not matched:
            raise SignatureError("X-Slack-Signature does not match the body", MISMATCH)

    def parse(self, body: bytes) -> SlackAction:
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(f"body is not a URL-encoded form: {exc}") from None
        if "payload" not in form:
            raise PayloadError("form field 'payload' is missing (not an interactivity "
                               "request; slash commands are not used by Podium)")
        try:
            payload = parse_json(form["payload"][0])
        except ValidationError as exc:
            raise PayloadError(f"payload is not valid JSON ({exc})") from None
        if not isinstance(payload, dict):
            raise PayloadError("payload must be a JSON object")
        if payload.get("type") == "view_submission":
            return self._view_submission(payload)
        if payload.get("type") != "block_actions":
            kind = payload.get("type")
            shown = repr(kind[:40]) if isinstance(kind, str) else type(kind).__name__
            raise PayloadError(f"unsupported interaction type {shown}; "
                               "Podium handles block_actions (button clicks)")
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            raise PayloadError("payload.actions must hold the clicked action")
        action = actions[0]
        action_id = action.get("action_id")
        if not isinstance(action_id, str) or action_id not in ACTIONS:
            shown = (repr(action_id[:40]) if isinstance(action_id, str)
                     else type(action_id).__name__)
            raise PayloadError(f"unknown action {shown}: expected one of "
                               f"{', '.join(ACTIONS)}")
        value = action.get("value")
        if not isinstance(value, str) or not is_number(value) or int(value) > MAX_ID:
            shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
            raise PayloadError(f"action value {shown} is not a request id")
        user_id, team_id, user_team = _who(payload)
        channel = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
        container = (payload.get("container") if isinstance(payload.get("container"), dict)
                     else {})
        action_ts = action.get("action_ts") or payload.get("trigger_id")
        if not action_ts:
            raise PayloadError("actions[0].action_ts is missing (needed to spot replays)")
        if not isinstance(action_ts, str) or len(action_ts) > 64 or not action_ts.isprintable():
            raise PayloadError("actions[0].action_ts is not a Slack timestamp")
        return SlackAction(
            action=ACTIONS[action_id], request_id=int(value), user=user_id, team=team_id,
            channel=_optional_id(channel.get("id") or container.get("channel_id")),
            message_ts=_optional_id(container.get("message_ts")),
            action_ts=action_ts, user_team=user_team,
            trigger_id=_optional_id(payload.get("trigger_id")))

    def _view_submission(self, payload: dict) -> SlackAction:
        """The reject modal submitted: a rejection with its reason."""
        from webhook_server.keys import SLACK_REJECT_VIEW
        from webhook_server.notify.modals import submitted_reason

        view = payload.get("view") if isinstance(payload.get("view"), dict) else {}
        if view.get("callback_id") != SLACK_REJECT_VIEW:
            raise PayloadError("unknown modal: Podium only opens the reject-reason modal")
        request_id = view.get("private_metadata")
        if not isinstance(request_id, str) or not is_number(request_id) \
                or int(request_id) > MAX_ID:
            raise PayloadError("view.private_metadata is not a request id")
        view_id = _slack_id(view.get("id"), "view.id")
        reason = submitted_reason(view)
        if reason is None:
            raise PayloadError("a rejection needs a reason (the modal's field is empty)", 422)
        user_id, team_id, user_team = _who(payload)
        return SlackAction(action="reject", request_id=int(request_id), user=user_id,
                           team=team_id, channel=None, message_ts=None,
                           action_ts=f"view-{view_id}", user_team=user_team,
                           reason=reason[:500])

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


def _who(payload: dict) -> tuple[str, str, str | None]:
    """(user id, workspace id, the user's own workspace if Slack sent it) of an
    interaction: a click or a modal's submission."""
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    team = payload.get("team") if isinstance(payload.get("team"), dict) else {}
    user_id = _slack_id(user.get("id"), "payload.user.id")
    user_team = user.get("team_id")
    user_team = (None if user_team in (None, "")
                 else _slack_id(user_team, "payload.user.team_id"))
    return user_id, _slack_id(team.get("id") or user_team, "payload.team.id"), user_team


def _slack_id(value, where: str) -> str:
    """A Slack id (user, team): a short printable string."""
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{where} is missing")
    if len(value) > 64 or not value.isprintable() or ":" in value:
        raise PayloadError(f"{where} is not a Slack id")
    return value


def _optional_id(value) -> str | None:
    """Channel ids and message timestamps are only used to reply: unusable ones are
    dropped rather than refused."""
    if isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable():
        return value
    return None
