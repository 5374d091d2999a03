"""Rollback: a request (origin ``rollback``) whose job moves the champion back.

Only to a version that Podium made champion before (the ledger's promotions and
rollbacks), never to anything else: a version set by hand, or never checked, cannot be made
champion this way. The request is validated when it is asked for (a clear 4xx / exit 1),
enters through the intake like every other request, and is validated again by its job, run
by a worker under the model lock, which records the move's intent and performs it like a
promotion, so a rollback never races a promotion of the same model. The caller (``podium
rollback``, the API, the page) follows the request in the store.

The monitoring job asks too (``decayed``, policy ``monitoring.on_decay``): when the champion
decayed and the former champion did significantly better live, a ``propose`` waits for the
people who may roll back (Rollback / Dismiss, the rollback quorum, the evidence digest
binding each agreement to the live comparison shown), a ``rollback`` is queued at once.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

from sqlalchemy import Connection

from podium_policy.schema import Policy
from webhook_server import contract
from webhook_server.intake import tell
from webhook_server.intake.events import MONITOR, ROLLBACK_ORIGIN, RollbackRequested
from webhook_server.intake.intake import Intake
from webhook_server.intake.sources import Delivery
from webhook_server.store import audit, ledger, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Request
from webhook_server.workflow import decisions, moves, permissions
from webhook_server.workflow.deps import Deps
from webhook_server.workflow.errors import RollbackRefused

__all__ = ["ROLLBACK_ORIGIN", "begin_rollback", "decayed", "request", "validate"]


def validate(conn: Connection, model: str, alias: str, to: str | None) -> RollbackRefused | None:
    """Why rolling ``model`` back to ``to`` is refused, or None when it may go ahead."""
    champions = ledger.former_champions(conn, model, alias)
    if not champions:
        return RollbackRefused(f"no champion of {model} in the ledger: Podium never "
                               "promoted a version of this model", 404)
    current = ledger.current(conn, model, alias)
    if to is None:
        return RollbackRefused(f"no earlier champion of {model} in the ledger", 409)
    if to == current:
        return RollbackRefused(f"v{to} is already the champion of {model}", 409)
    if to not in champions:
        return RollbackRefused(
            f"v{to} of {model} was never champion: a rollback goes only to a former "
            f"champion ({', '.join('v' + v for v in champions if v != current) or 'none'}); "
            "promote other versions with a transition request", 422)
    return None


def request(deps: Deps, model: str, actor: str, to: str | None = None, *,
            groups: frozenset[str] = frozenset()) -> dict:
    """Record a rollback request through the intake, which queues its job for a worker
    (with a rollback quorum over 1, the request waits for the others to agree). Raises
    NotAllowed, RollbackRefused."""
    who = permissions.authorize(deps.store, deps.policy, "rollback", actor, model=model,
                                groups=groups, detail={"to": to})
    cfg = deps.policy_for(model)
    alias = cfg.aliases.champion
    quorum = cfg.rollback.quorum
    with deps.store.tx() as conn:
        current = ledger.current(conn, model, alias)
        target = to if to is not None else ledger.rollback_target(conn, model, alias, current)
        if problem := validate(conn, model, alias, target):
            raise problem
        body = json.dumps({"model": model, "to": target, "actor": actor})
        event = RollbackRequested(model, target, current, requested_by=actor, quorum=quorum)
        recorded = deps.intake.record_in(conn, Delivery(
            actor.split(":", 1)[0], f"rollback:{uuid.uuid4().hex}", "rollback.request", body,
            event))
        request_id = recorded.request_id
        if quorum > 1:  # the one who asks agrees: their approval is the first
            req = reqs.get(conn, request_id)
            audit.record(conn, actor=actor, action="approve",
                         subject=contract.request_subject(request_id),
                         detail={"note": "asked for the rollback", "person": who,
                                 "evidence": decisions.evidence_of(req)})
            return {"request": request_id, "model": model, "from": current, "to": target,
                    "state": states.AWAITING_APPROVAL, "approvals": [who], "quorum": quorum}
    return {"request": request_id, "model": model, "from": current, "to": target,
            "state": states.QUEUED}


def decayed(intake: Intake, policy: Policy, conn: Connection,
            event: RollbackRequested) -> dict:
    """The rollback the monitoring job asks for (``event.requested_by`` ``monitor``), in the
    job's transaction and through the intake: proposed (waits for the people who may roll
    back) or queued. Asked once per champion's tenure (its ledger move) and former champion
    (the delivery id, ``contract.decay_rollback``: a dismissed proposal stays dismissed),
    and not while another rollback of the model is open. What became of it: ``state``
    (``awaiting_approval``, ``queued``, ``not asked``, ``already asked``), ``request``,
    ``why``."""
    model = event.model
    alias = policy.for_model(model).aliases.champion
    current, tenure = ledger.current(conn, model, alias), ledger.belongs(conn, model, alias)
    if tenure is None or current != event.current:
        return {"state": "not asked", "request": None,
                "why": f"the ledger's champion is v{current}, not v{event.current}"}
    if problem := validate(conn, model, alias, event.to):
        return {"state": "not asked", "request": None, "why": str(problem)}
    for other in reqs.open_for_model(conn, model):
        if other.origin == ROLLBACK_ORIGIN:
            return {"state": "not asked", "request": other.id,
                    "why": f"rollback request {other.id} is open ({other.state})"}
    # the tenure it answers, kept with the evidence: the job refuses it once that ends
    event = replace(event, evidence={**(event.evidence or {}), "tenure": tenure["id"]})
    body = json.dumps({"model": model, "to": event.to, "from": event.current,
                       "proposed": event.proposed, "evidence": event.evidence}, default=str)
    recorded = intake.record_in(conn, Delivery(
        MONITOR, contract.decay_rollback(model, tenure["id"], event.to), "rollback.decay",
        body, event))
    if recorded.duplicate:
        earlier = reqs.get(conn, recorded.request_id)
        return {"state": "already asked", "request": earlier.id,
                "why": f"request {earlier.id} asked it for this decay ({earlier.state})"}
    return {"state": states.AWAITING_APPROVAL if event.proposed else states.QUEUED,
            "request": recorded.request_id, "why": None}


def begin_rollback(conn: Connection, req: Request, alias: str) -> None:
    """The rollback request's job, under the model lock: the ledger decides where a
    rollback may go; the intent is recorded, or the request refused with the reason. A
    rollback is refused once the champion moved from the one it was asked (and agreed) to
    go back from (``compared_with``): whose decay it answered, or who asked for it; a
    decay's, also once the tenure it answered ended (the champion left and came back)."""
    current = ledger.current(conn, req.model, alias)
    problem = validate(conn, req.model, alias, req.version)
    if problem is None and req.compared_with and current != req.compared_with:
        problem = (f"the champion is v{current} now, not v{req.compared_with} "
                   + ("whose decay this rollback answered" if req.requested_by == MONITOR
                      else "it was asked to go back from")
                   + "; nothing changed")
    tenure = (req.evidence_json().get("decay") or {}).get("tenure")
    if problem is None and tenure is not None and (
            now := ledger.belongs(conn, req.model, alias)) and now["id"] != tenure:
        problem = (f"v{current}'s tenure whose decay this rollback answered ended (ledger "
                   f"move {tenure}); v{current} is champion again since move {now['id']} "
                   f"({now['kind']} from v{now['from_version']}), whose decay was not found; "
                   "nothing changed")
    if problem is not None:
        tell.transition(conn, req.id, expect=(states.QUEUED,), to=states.REJECTED,
                        actor=req.requested_by or "worker", reason=str(problem))
        return
    actor = req.requested_by or "worker"
    if actor == MONITOR and (agreed := reqs.last_event_into(conn, req.id, states.QUEUED)):
        actor = agreed.actor  # a proposal: who completed the agreement
    moves.begin(conn, req, expect=(states.QUEUED,), alias=alias, from_version=current,
                kind=ledger.ROLLBACK, actor=actor)
