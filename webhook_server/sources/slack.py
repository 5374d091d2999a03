"""Slack interactivity: verify the signed raw body, parse the ``payload`` form field.

Only Approve / Reject button clicks (``block_actions``) mean anything to Podium; everything
else is refused with the reason. Identity is Slack's ``user.id`` and ``team.id``, never names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

from webhook_server.keys import SLACK_APPROVE as APPROVE
from webhook_server.keys import SLACK_REJECT as REJECT
from webhook_server.sources import PayloadError, SignatureError
from webhook_server.sources._common import is_number

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

    @property
    def delivery_id(self) -> str:
        return f"{self.team}:{self.user}:{self.action_ts}"

    def as_payload(self) -> dict:
        return {"action": self.action, "request_id": self.request_id, "user": self.user,
                "team": self.team, "channel": self.channel, "message_ts": self.message_ts,
                "action_ts": self.action_ts}


class SlackSource:
    def __init__(self, signing_secret: str | None, *, team_id: str | None = None,
                 tolerance_s: int = 300, clock: Clock | None = None) -> None:
        self.team_id = team_id
        self.tolerance_s = tolerance_s
        self.clock = clock or Clock()
        self.verifier = (SignatureVerifier(signing_secret, clock=self.clock)
                         if signing_secret else None)

    def verify(self, body: bytes, headers) -> None:
        if self.verifier is None:
            raise SignatureError("Slack interactions are disabled: SLACK_SIGNING_SECRET is "
                                 "not set")
        timestamp = headers.get("X-Slack-Request-Timestamp")
        signature = headers.get("X-Slack-Signature")
        if not timestamp:
            raise SignatureError("missing X-Slack-Request-Timestamp header")
        if not signature:
            raise SignatureError("missing X-Slack-Signature header")
        if not is_number(timestamp):
            raise SignatureError("X-Slack-Request-Timestamp is not a Unix timestamp")
        skew = abs(self.clock.now() - int(timestamp))
        if skew > self.tolerance_s:
            raise SignatureError(f"stale request: timestamp is {skew:.0f} s from now "
                                 f"(limit {self.tolerance_s} s)")
        if not signature.startswith("v0="):
            raise SignatureError("X-Slack-Signature is not a v0 signature")
        if not self.verifier.is_valid(body, timestamp, signature):
            raise SignatureError("X-Slack-Signature does not match the body")

    def parse(self, body: bytes) -> SlackAction:
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(f"body is not a URL-encoded form: {exc}") from None
        if "payload" not in form:
            raise PayloadError("form field 'payload' is missing (not an interactivity "
                               "request; slash commands are not used by Podium)")
        try:
            payload = json.loads(form["payload"][0])
        except json.JSONDecodeError as exc:
            raise PayloadError(f"payload is not valid JSON: {exc.msg} at {exc.pos}") from None
        if not isinstance(payload, dict):
            raise PayloadError("payload must be a JSON object")
        if payload.get("type") != "block_actions":
            raise PayloadError(f"unsupported interaction type {payload.get('type')!r}; "
                               "Podium handles block_actions (button clicks)")
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            raise PayloadError("payload.actions must hold the clicked action")
        action = actions[0]
        action_id = action.get("action_id")
        if action_id not in ACTIONS:
            raise PayloadError(f"unknown action {action_id!r}: expected one of "
                               f"{', '.join(ACTIONS)}")
        value = action.get("value")
        if not isinstance(value, str) or not is_number(value):
            raise PayloadError(f"action value {value!r} is not a request id")
        user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
        team = payload.get("team") if isinstance(payload.get("team"), dict) else {}
        user_id, team_id = user.get("id"), team.get("id") or user.get("team_id")
        if not isinstance(user_id, str) or not user_id:
            raise PayloadError("payload.user.id is missing")
        if not isinstance(team_id, str) or not team_id:
            raise PayloadError("payload.team.id is missing")
        channel = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
        container = (payload.get("container") if isinstance(payload.get("container"), dict)
                     else {})
        action_ts = action.get("action_ts") or payload.get("trigger_id")
        if not action_ts:
            raise PayloadError("actions[0].action_ts is missing (needed to spot replays)")
        return SlackAction(
            action=ACTIONS[action_id], request_id=int(value), user=user_id, team=team_id,
            channel=channel.get("id") or container.get("channel_id"),
            message_ts=container.get("message_ts"),
            action_ts=str(action_ts))

    def team_allowed(self, action: SlackAction) -> bool:
        return self.team_id is None or action.team == self.team_id
