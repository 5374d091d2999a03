"""Send the outbox to Slack: in order, each row once, retried while Slack is down.

The pass itself (lease, order, backoff, dead rows) is ``notify.drain``. A row whose
previous attempt may have posted (``attempted_at`` set) is looked up in Slack by its key
first, so a crash between posting and recording never posts twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from webhook_server import contract
from webhook_server.adapters.notify import blocks, messages
from webhook_server.adapters.notify.drain import drain
from webhook_server.adapters.notify.slack import SlackBot, SlackHook
from webhook_server.store import Store, audit
from webhook_server.store import outbox as ob
from webhook_server.store import transition_requests as reqs

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 60.0
PERMANENT_ATTEMPTS = 3  # a permanent Slack error is retried this often, then the row is dead


class SlackSender:
    def __init__(self, store: Store, *, bot: SlackBot | None = None,
                 hook: SlackHook | None = None, owner: str = "sender",
                 tracking_uri: str | None = None, public_url: str | None = None,
                 quorum_of: Callable[[str], int] | None = None, lease_s: float = 60,
                 max_backoff_s: float = MAX_BACKOFF_S) -> None:
        self.store, self.bot, self.hook, self.owner = store, bot, hook, owner
        self.tracking_uri, self.public_url = tracking_uri, public_url
        self.quorum_of = quorum_of or (lambda model: 1)
        self.lease_s = lease_s
        self.max_backoff_s = max_backoff_s

    @property
    def mode(self) -> str:
        return "bot" if self.bot else "webhook" if self.hook else "log"

    def flush(self, limit: int = 200) -> dict[str, int]:
        """Send what is due. Returns counts of sent, retry (left pending) and dead rows."""
        return drain(self.store, channel="slack", owner=self.owner,
                     send=lambda row: (self._send(row), None), limit=limit,
                     max_backoff_s=self.max_backoff_s, lease_s=self.lease_s,
                     permanent_attempts=PERMANENT_ATTEMPTS)

    # --- one row -----------------------------------------------------------------------

    def _send(self, row: dict[str, Any]) -> str | None:
        if row["kind"] == "ephemeral":
            return self._ephemeral(row)
        if self.mode == "log":
            log.info("notification: %s", self._plain(row))
            return "log"
        if self.mode == "webhook":
            text = self._plain(row, markup=True)
            self.hook.send(text, [{"type": "section", "text": {"type": "mrkdwn",
                                                                "text": text[:2900]}}])
            return "webhook"
        if row["kind"] == "step":
            return self._step(row)
        text, body = blocks.message(row["payload"])
        return self._post_once(row, text=text, blocks=body)

    def _step(self, row: dict[str, Any]) -> str:
        request_id = row["request_id"]
        req, approvals, thread = self._request(request_id)
        text, body = blocks.parent(req, tracking_uri=self.tracking_uri,
                                   public_url=self.public_url, approvals=approvals,
                                   quorum=self.quorum_of(req.model))
        if thread is None:
            parent_key = contract.request_parent_message(request_id)
            found = (self.bot.find(parent_key, oldest=self._oldest(row))
                     if row["attempted_at"] else None)
            self._attempt(row)
            channel, ts = found or self.bot.post(text=text, blocks=body, key=parent_key)
            with self.store.tx() as conn:
                ob.save_thread(conn, request_id, channel, ts)
            thread = {"channel": channel, "ts": ts}
        else:
            self.bot.update(channel=thread["channel"], ts=thread["ts"], text=text, blocks=body)
        reply = self._post_once(row, text=blocks.step(row["payload"]), blocks=None,
                                thread_ts=thread["ts"], channel=thread["channel"])
        return reply

    def _post_once(self, row: dict[str, Any], *, text: str, blocks: list | None,
                   thread_ts: str | None = None, channel: str | None = None) -> str:
        if row["attempted_at"]:
            found = self.bot.find(row["key"], channel=channel, thread_ts=thread_ts,
                                  oldest=self._oldest(row))
            if found:
                log.info("notification %s was posted before a crash; not posting again",
                         row["key"])
                return found[1]
        self._attempt(row)
        return self.bot.post(text=text, blocks=blocks, key=row["key"], thread_ts=thread_ts,
                             channel=channel)[1]

    def _ephemeral(self, row: dict[str, Any]) -> str:
        p = row["payload"]
        text = messages.reply(p)
        if self.bot is None:
            log.info("ephemeral for %s: %s", p["user"], text)
            return "log"
        self.bot.ephemeral(channel=p["channel"], user=p["user"], text=blocks.escape(text),
                           thread_ts=p.get("thread_ts"))
        return "ephemeral"

    def _attempt(self, row: dict[str, Any]) -> None:
        if not row.get("_marked"):
            with self.store.tx() as conn:
                ob.mark_attempt(conn, row["id"])
            row["_marked"] = True

    @staticmethod
    def _oldest(row: dict[str, Any]) -> float:
        return (row["created_at"] - timedelta(minutes=5)).timestamp()

    def _request(self, request_id: int):
        with self.store.read() as conn:
            req = reqs.get(conn, request_id)
            approvals = sorted(audit.approvals(conn, contract.request_subject(request_id)))
            thread = ob.thread(conn, request_id)
        return req, approvals, thread

    def _plain(self, row: dict[str, Any], markup: bool = False) -> str:
        """One line for webhook mode (``markup``: escaped mrkdwn) or the log."""
        if row["kind"] != "step":
            text = messages.text(row["payload"])
            return blocks.md(text) if markup else text
        with self.store.read() as conn:
            req = reqs.get(conn, row["request_id"])
        title = blocks.escape(blocks.title(req)) if markup else blocks.title(req)
        return f"{title} (request {req.id}): {blocks.step(row['payload'])}"
