"""What a Slack interaction says: the ``payload`` form field, and a button click
(``block_actions``) -> ``SlackAction``. Identity is Slack's ``user.id`` and ``team.id``,
never names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from webhook_server.contract import SLACK_APPROVE as APPROVE
from webhook_server.contract import SLACK_REJECT as REJECT
from webhook_server.intake.sources._common import is_number
from webhook_server.intake.sources.errors import PayloadError
from webhook_server.intake.validate import MAX_ID, ValidationError, parse_json

ACTIONS = {APPROVE: "approve", REJECT: "reject"}


SHA256 = re.compile(r"^[0-9a-f]{64}$")


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
    evidence: str | None = None  # the evidence digest the message showed

    @property
    def delivery_id(self) -> str:
        return f"{self.team}:{self.user}:{self.action_ts}"

    def as_payload(self) -> dict:
        return {"action": self.action, "request_id": self.request_id, "user": self.user,
                "team": self.team, "channel": self.channel, "message_ts": self.message_ts,
                "action_ts": self.action_ts, "trigger_id": self.trigger_id,
                "reason": self.reason, "evidence": self.evidence}


def interaction_payload(body: bytes) -> dict:
    """The JSON object in the ``payload`` field of Slack's URL-encoded form."""
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
    return payload


def button_click(payload: dict) -> SlackAction:
    """A ``block_actions`` payload: Approve or Reject clicked on a request's message."""
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise PayloadError("payload.actions must hold the clicked action")
    action = actions[0]
    action_id = action.get("action_id")
    if not isinstance(action_id, str) or action_id not in ACTIONS:
        shown = (repr(action_id[:40]) if isinstance(action_id, str)
                 else type(action_id).__name__)
        raise PayloadError(f"unknown action {shown}: expected one of {', '.join(ACTIONS)}")
    value = action.get("value")
    request_id, evidence = request_ref(value, "action value")
    user_id, team_id, user_team = who(payload)
    channel = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
    container = (payload.get("container") if isinstance(payload.get("container"), dict)
                 else {})
    action_ts = action.get("action_ts") or payload.get("trigger_id")
    if not action_ts:
        raise PayloadError("actions[0].action_ts is missing (needed to spot replays)")
    if not isinstance(action_ts, str) or len(action_ts) > 64 or not action_ts.isprintable():
        raise PayloadError("actions[0].action_ts is not a Slack timestamp")
    return SlackAction(
        action=ACTIONS[action_id], request_id=request_id, user=user_id, team=team_id,
        channel=_optional_id(channel.get("id") or container.get("channel_id")),
        message_ts=_optional_id(container.get("message_ts")),
        action_ts=action_ts, user_team=user_team,
        trigger_id=_optional_id(payload.get("trigger_id")), evidence=evidence)


def request_ref(value, where: str) -> tuple[int, str | None]:
    """``<request id>:<evidence digest>`` (what Podium's buttons and modal carry) as
    (id, digest); a bare request id (a message posted before digests) gives no digest."""
    if not isinstance(value, str) or len(value) > 100:
        shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
        raise PayloadError(f"{where} {shown} is not a request id")
    ref, _, digest = value.partition(":")
    if not is_number(ref) or int(ref) > MAX_ID or (digest and not SHA256.match(digest)):
        raise PayloadError(f"{where} {value[:40]!r} is not a request id with its evidence "
                           "digest")
    return int(ref), digest or None


def who(payload: dict) -> tuple[str, str, str | None]:
    """(user id, workspace id, the user's own workspace if Slack sent it) of an
    interaction: a click or a modal's submission."""
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    team = payload.get("team") if isinstance(payload.get("team"), dict) else {}
    user_id = slack_id(user.get("id"), "payload.user.id")
    user_team = user.get("team_id")
    user_team = (None if user_team in (None, "")
                 else slack_id(user_team, "payload.user.team_id"))
    return user_id, slack_id(team.get("id") or user_team, "payload.team.id"), user_team


def slack_id(value, where: str) -> str:
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
