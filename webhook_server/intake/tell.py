"""Who hears of a request's step: the store records it, this module tells.

Each function records through ``transition_requests`` and, in the caller's transaction,
writes the outbox rows the step leaves (the outbox is transactional: a change is never
recorded without its notification, nor a notification sent for a change that rolled back):

- a new request and every state change: a ``step`` row (its Slack thread);
- a request that ends (promoted, rejected, failed, ...): a ``decision`` row for GitLab (the
  merge request the version came from, ``adapters/gitlab.py``);
- a history note that people should see (an approval short of the quorum).

Payloads carry data (states, actor, reason, summaries); the channel's renderer turns them
into text at send time (``adapters/notify/blocks.py``). It lives in the intake, the lowest
room where requests begin, so the workflow above tells the same way.
"""

from __future__ import annotations

from sqlalchemy import Connection

from webhook_server import contract
from webhook_server.core import scrub
from webhook_server.store import outbox, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Moved


def create(conn: Connection, *, state: str, reason: str | None = None,
           actor: str = "intake", **fields) -> int:
    """``transition_requests.create``, and its first step in the thread."""
    request_id = reqs.create(conn, state=state, reason=reason, actor=actor, **fields)
    outbox.emit(conn, key=contract.request_created_note(request_id), kind="step",
                request_id=request_id,
                payload={"to": state, "actor": actor, "reason": scrub.maybe(reason)})
    return request_id


def transition(conn: Connection, request_id: int, *, expect: tuple[str, ...], to: str,
               actor: str, reason: str | None = None) -> bool:
    """``transition_requests.transition`` (compare-and-set), and what the move tells.
    True when it moved."""
    moved = reqs.transition(conn, request_id, expect=expect, to=to, actor=actor,
                            reason=reason)
    if moved is not None:
        step(conn, moved)
    return moved is not None


def step(conn: Connection, moved: Moved) -> None:
    """The rows a recorded state change leaves: its step, and the decision when it ends."""
    request_id = moved.request_id
    outbox.emit(conn, key=contract.request_event_note(request_id, moved.event_id),
                kind="step", request_id=request_id,
                payload={"from": moved.from_state, "to": moved.to_state, "actor": moved.actor,
                         "reason": moved.reason, "checks": moved.checks,
                         "comparison": moved.comparison})
    if moved.to_state in states.TERMINAL:  # the merge request hears of the decision
        outbox.emit(conn, key=contract.gitlab_decision(request_id), kind="decision",
                    request_id=request_id, channel="gitlab",
                    payload={"state": moved.to_state})


def note(conn: Connection, request_id: int, actor: str, text: str) -> None:
    """A history line without a state change, posted in the request's thread too."""
    event_id = reqs.note(conn, request_id, actor, text)
    outbox.emit(conn, key=contract.request_event_note(request_id, event_id), kind="step",
                request_id=request_id, payload={"text": scrub.clean(text), "actor": actor})
