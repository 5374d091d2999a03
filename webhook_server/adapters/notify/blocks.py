"""Block Kit for Podium's messages. Pure functions of plain dicts (request rows, payloads).

Text from outside (model names, the asked-for target, reasons, comments, who asked) is
escaped for Slack's mrkdwn first (``&``, ``<``, ``>``), so ``<!channel>`` or a link
``<https://...|Approve here>`` shows as typed; Podium's own links and the ``<@U..>`` mentions
of ``slack:U..`` actors are added after escaping.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from webhook_server.adapters.notify import messages
from webhook_server.contract import SLACK_APPROVE as APPROVE
from webhook_server.contract import SLACK_REJECT as REJECT
from webhook_server.core import scrub
from webhook_server.store import states
from webhook_server.store.records import Request

_SLACK_ACTOR = re.compile(r"\bslack:([UW][A-Z0-9]{2,})\b")
_SLACK_ID = re.compile(r"[UW][A-Z0-9]{2,}")
ICONS = {states.QUEUED: ":hourglass_flowing_sand:", states.CHECKING: ":mag:",
         states.COMPARING: ":scales:", states.AWAITING_APPROVAL: ":raised_hand:",
         states.PROMOTING: ":arrow_up:",
         states.PROMOTED: ":trophy:", states.STAGED: ":package:",
         states.REJECTED: ":no_entry:", states.ARCHIVED: ":file_cabinet:",
         states.FAILED: ":x:", states.CANCELLED: ":heavy_minus_sign:",
         states.SHADOWING: ":eyes:", states.INCONCLUSIVE: ":grey_question:"}


def escape(text: Any) -> str:
    """Text for mrkdwn: secrets redacted, control characters dropped, Slack's three
    control characters as entities (length is capped by ``clip``)."""
    return (scrub.clean(text, limit=1 << 20).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;"))


def clip(md: str, limit: int) -> str:
    """Escaped text cut to ``limit`` characters without leaving half an entity."""
    if len(md) <= limit:
        return md
    cut = md[:limit]
    amp = cut.rfind("&", max(0, limit - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut


def who(actor: str | None) -> str:
    """``slack:U123`` as a mention; other actors (policy, cli:alice) as they are, escaped."""
    if not actor:
        return "-"
    if actor.startswith("slack:") and _SLACK_ID.fullmatch(actor[6:]):
        return f"<@{actor[6:]}>"
    return escape(actor)


def mentions(text: str) -> str:
    """History lines name actors (``slack:U123``); in Slack they read as mentions. Apply to
    text already escaped."""
    return _SLACK_ACTOR.sub(r"<@\1>", text)


def md(text: Any) -> str:
    """Outside text as mrkdwn: escaped, then ``slack:U..`` actors as mentions."""
    return mentions(escape(text))


def version_url(tracking_uri: str | None, model: str, version: str) -> str | None:
    if not tracking_uri or not tracking_uri.startswith("http"):
        return None
    return f"{tracking_uri.rstrip('/')}/#/models/{quote(model)}/versions/{quote(version)}"


def title(req: Request) -> str:
    return f"{req.model} v{req.version} → {req.target or req.raw_target}"


def parent(req: Request, *, tracking_uri: str | None = None,
           public_url: str | None = None, buttons: bool = True,
           approvals: list[str] | None = None, quorum: int = 1) -> tuple[str, list]:
    """The request's parent message: summary fields, links, and buttons while waiting."""
    state = req.state
    text = f"{ICONS.get(state, '')} {escape(title(req))}: {escape(state)}"
    fields = [f"*Status*\n{ICONS.get(state, '')} {escape(state)}",
              f"*Checks*\n{escape(req.checks or '-')}",
              f"*Requested by*\n{who(req.requested_by or req.origin)}",
              f"*Decided by*\n{who(req.decided_by)}"]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title(req)[:150]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if req.comparison:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": f"*Comparison* {clip(md(req.comparison), 2900)}"}})
    if live := req.live_line():  # comparison.live: the last look at live outcomes
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": f"*Live evidence* {clip(md(live), 2900)}"}})
    if req.reason:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": f"*Reason* {clip(md(req.reason), 2900)}"}})
    links = []
    if url := version_url(tracking_uri, req.model, req.version):
        links.append(f"<{url}|MLflow version>")
    if public_url:
        links.append(f"<{public_url.rstrip('/')}/api/v1/requests/{req.id}|request "
                     f"{req.id} (report)>")
    context = [f"request {req.id}"] + links
    if approvals:
        context.append(f"approved by {', '.join(who(a) for a in approvals)} "
                       f"({len(approvals)}/{quorum})")
    blocks.append({"type": "context",
                   "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    if buttons and state == states.AWAITING_APPROVAL and not req.decided_by:
        blocks.append(_buttons(req))
    return text, blocks


def _buttons(req: Request) -> dict[str, Any]:
    """Approve / Reject; on a rollback (asked by a person, or proposed by the monitoring
    job) Rollback / Dismiss, decided by who may roll back. Each carries the evidence
    digest: a click agrees to what was shown."""
    value = f"{req.id}:{req.evidence_digest()}"
    rollback = req.origin == "rollback"
    yes, no = ("Rollback", "Dismiss") if rollback else ("Approve", "Reject")
    ask, effect = (("Roll back to this version?", "will be champion again")
                   if rollback else ("Approve this version?", "will be promoted"))
    return {"type": "actions", "block_id": f"podium_decide_{req.id}", "elements": [
        {"type": "button", "action_id": APPROVE, "style": "primary", "value": value,
         "text": {"type": "plain_text", "text": yes},
         "confirm": {"title": {"type": "plain_text", "text": ask},
                     "text": {"type": "mrkdwn",
                              "text": f"{escape(title(req))} {effect} when the quorum is "
                                      "met."},
                     "confirm": {"type": "plain_text", "text": yes},
                     "deny": {"type": "plain_text", "text": "Cancel"}}},
        # Reject / Dismiss opens a modal that asks why (notify/modals.py)
        {"type": "button", "action_id": REJECT, "style": "danger", "value": value,
         "text": {"type": "plain_text", "text": no}},
    ]}


def step(payload: dict[str, Any]) -> str:
    """A threaded reply for one step of a request (payload written by the store)."""
    if payload.get("text"):
        return md(payload["text"])
    to, reason, actor = payload.get("to"), payload.get("reason"), payload.get("actor")
    icon = ICONS.get(to, "")
    reason = escape(reason) if reason else None
    if to == states.QUEUED:
        line = "request received"
    elif to == states.CHECKING:
        line = "running the model checks"
    elif to == states.COMPARING:
        line = (f"checks passed ({escape(payload.get('checks') or '-')}); comparing with the "
                "champion")
    elif to == states.SHADOWING:
        line = "shadowing: " + (reason or "waiting for live evidence")
    elif to == states.AWAITING_APPROVAL:
        line = ("comparison: " + escape(payload["comparison"]) + "\n"
                if payload.get("comparison") else "") + (reason or "waiting for approval")
    elif to in states.TERMINAL:
        line = f"{to} by {who(actor)}" + (f": {reason}" if reason else "")
    elif to == states.PROMOTING:
        line = "moving the alias" + (f" (decided by {who(actor)})" if actor else "")
    else:
        line = f"{escape(to)}" + (f": {reason}" if reason else "")
    return mentions(f"{icon} {line}".strip())


def message(payload: dict[str, Any]) -> tuple[str, list]:
    """A standalone message (new version, drift, rollback, dead job): its words
    (``messages.text``) as mrkdwn."""
    text = md(messages.text(payload))
    return text, [{"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 2900)}}]
