"""The Slack edge: slack_sdk clients with retry handlers, and nothing else of Slack leaks.

Rate limits (429 + Retry-After), server errors (500/503) and connection errors are retried
inside the client a few times; what still fails reaches the outbox sender, which retries
later without losing or reordering anything.
"""

from __future__ import annotations

import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from webhook_server.adapters.notify.drain import DeliveryError
from webhook_server.core import tracing
from webhook_server.core.settings import Settings

METADATA_TYPE = "podium_notification"
# Errors that retrying cannot fix: configuration or message problems.
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed",
    "account_inactive", "token_revoked", "missing_scope", "invalid_blocks", "msg_too_long",
    "no_text", "restricted_action", "message_not_found", "cant_update_message",
})


class SlackError(DeliveryError):
    """A Slack call that failed after the client's own retries."""


def retry_handlers(max_retry_count: int = 2) -> list:
    return [RateLimitErrorRetryHandler(max_retry_count=max_retry_count),
            ServerErrorRetryHandler(max_retry_count=max_retry_count),
            ConnectionErrorRetryHandler(max_retry_count=max_retry_count)]


def mode(settings: Settings) -> str:
    """``bot`` (Web API: threads, updates, buttons), ``webhook`` (notify only) or ``log``."""
    if settings.slack_bot_token and settings.slack_channel:
        return "bot"
    if settings.slack_webhook_url:
        return "webhook"
    return "log"


def describe_mode(settings: Settings) -> str:
    m = mode(settings)
    if m == "bot":
        buttons = ("approvals on" if settings.slack_signing_secret
                   else "approvals OFF: SLACK_SIGNING_SECRET unset")
        return f"slack: bot in {settings.slack_channel} ({buttons})"
    if m == "webhook":
        return "slack: incoming webhook (notifications only, no approval buttons)"
    if settings.slack_bot_token and not settings.slack_channel:
        return "slack: OFF (SLACK_BOT_TOKEN set but SLACK_CHANNEL missing); log only"
    return "slack: not configured; notifications go to the log and the store"


def _call(fn, **kwargs) -> Any:
    try:
        with tracing.span(f"slack {fn.__name__}", kind="client"):
            return fn(**kwargs)
    except SlackApiError as exc:
        resp = exc.response
        error = resp.get("error") if resp is not None else None
        status = resp.status_code if resp is not None else None
        retry_after = None
        if status == 429:
            value = (resp.headers or {}).get("Retry-After") or (resp.headers or {}).get(
                "retry-after") or 1
            retry_after = float(value[0] if isinstance(value, list) else value)
        raise SlackError(f"slack {fn.__name__}: {error or status}",
                         permanent=error in PERMANENT_ERRORS, retry_after_s=retry_after,
                         refused=status is not None and status < 500) from None
    except OSError as exc:  # connection refused, reset, timeout
        raise SlackError(f"slack {fn.__name__}: {type(exc).__name__}: {exc}") from None


class SlackBot:
    """What the sender and the approval handler need from the Web API."""

    def __init__(self, settings: Settings, timeout_s: int = 10) -> None:
        self.channel = settings.slack_channel
        self.client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url,
                                timeout=timeout_s, retry_handlers=retry_handlers())
        # views.open inside Slack's 3 s window: one try, a short timeout, no retries
        self.quick = WebClient(token=settings.slack_bot_token,
                               base_url=settings.slack_api_url, timeout=2)
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    def post(self, *, text: str, blocks: list | None, key: str,
             thread_ts: str | None = None, channel: str | None = None) -> tuple[str, str]:
        """Post with the outbox key in the message metadata; returns (channel id, ts)."""
        resp = _call(self.client.chat_postMessage, channel=channel or self.channel, text=text,
                     blocks=blocks, thread_ts=thread_ts, unfurl_links=False,
                     metadata={"event_type": METADATA_TYPE, "event_payload": {"key": key}})
        return resp["channel"], resp["ts"]

    def update(self, *, channel: str, ts: str, text: str, blocks: list | None) -> None:
        _call(self.client.chat_update, channel=channel, ts=ts, text=text, blocks=blocks)

    def ephemeral(self, *, channel: str, user: str, text: str,
                  thread_ts: str | None = None) -> None:
        _call(self.client.chat_postEphemeral, channel=channel, user=user, text=text,
              thread_ts=thread_ts)

    def open_view(self, *, trigger_id: str, view: dict) -> str:
        """Open a modal for the user who clicked (``views.open``, within 3 s of the
        click: one try with a 2 s timeout); returns the view id."""
        return _call(self.quick.views_open, trigger_id=trigger_id, view=view)["view"]["id"]

    def find(self, key: str, *, channel: str | None = None, thread_ts: str | None = None,
             oldest: float = 0) -> tuple[str, str] | None:
        """The message an earlier attempt posted with ``key``, if it did (crash recovery)."""
        channel = channel or self.channel
        if thread_ts:
            resp = _call(self.client.conversations_replies, channel=channel, ts=thread_ts,
                         include_all_metadata=True, limit=200)
        else:
            resp = _call(self.client.conversations_history, channel=channel,
                         oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200)
        for message in resp.get("messages", []):
            meta = message.get("metadata") or {}
            if (meta.get("event_type") == METADATA_TYPE
                    and (meta.get("event_payload") or {}).get("key") == key):
                return resp.get("channel", channel), message["ts"]
        return None

    def usergroup_members(self, group: str, ttl_s: float = 300) -> frozenset[str]:
        """Members of a Slack user group, cached for ``ttl_s`` seconds."""
        cached = self._groups.get(group)
        if cached and time.monotonic() - cached[0] < ttl_s:
            return cached[1]
        resp = _call(self.client.usergroups_users_list, usergroup=group)
        members = frozenset(resp.get("users", []))
        self._groups[group] = (time.monotonic(), members)
        return members


class SlackHook:
    """Incoming-webhook mode: one message per notification, no threads, no updates."""

    def __init__(self, url: str, timeout_s: int = 10) -> None:
        self.client = WebhookClient(url, timeout=timeout_s, retry_handlers=retry_handlers())

    def send(self, text: str, blocks: list | None) -> None:
        try:
            resp = self.client.send(text=text, blocks=blocks)
        except OSError as exc:
            raise SlackError(f"slack webhook: {type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise SlackError(f"slack webhook: HTTP {resp.status_code} {resp.body[:100]}",
                             permanent=resp.status_code in (400, 403, 404, 410))
