"""Deciding a request that waits for approval: approve, reject, expire.

The request row is locked for the whole decision (``SELECT ... FOR UPDATE`` on
PostgreSQL), so two approvals at the same moment are counted one after the other and the
quorum is met exactly once. The approval that meets the quorum records the promotion's
intent (request ``promoting`` + ledger intent) in the same transaction and queues the job
that performs it.
"""

from __future__ import annotations

from datetime import timedelta

from webhook_server import keys
from webhook_server.store import audit, ledger, states
from webhook_server.store import requests as reqs
from webhook_server.store.schema import utcnow
from webhook_server.workflow import moves
from webhook_server.workflow.errors import DecisionConflict, NotAllowed


def may_decide(policy, model: str, actor: str, groups: frozenset[str] = frozenset()) -> bool:
    """Listed approvers decide: ``cli:<user>``, ``slack:<id>`` or a bare Slack user id.
    ``groups`` holds members of the policy's Slack user group (looked up by the caller).
    With no approvers and no group configured, anyone who can reach Podium decides."""
    approval = policy.for_model(model)["approval"]
    approvers = set(approval["approvers"])
    if not approvers and not approval.get("slack_usergroup"):
        return True
    slack_id = actor[6:] if actor.startswith("slack:") else None
    return actor in approvers or (slack_id is not None and (
        slack_id in approvers or slack_id in groups))


def decide(wf, request_id: int, actor: str, approve: bool, note: str | None = None, *,
           detail: dict | None = None, groups: frozenset[str] = frozenset()) -> dict:
    """Approve or reject a request waiting for approval (CLI, API, Slack)."""
    subject = keys.request_subject(request_id)
    with wf.store.read() as conn:
        req = reqs.get(conn, request_id)
    if req is None:
        raise DecisionConflict(f"request {request_id} does not exist")
    if not may_decide(wf.policy, req["model"], actor, groups):
        with wf.store.tx() as conn:
            audit.record(conn, actor=actor, action="denied", subject=subject,
                         detail={"approve": approve, **(detail or {})})
        raise NotAllowed(f"{actor} is not an approver of {req['model']}")
    cfg = wf.policy.for_model(req["model"])
    quorum = cfg["approval"]["quorum"]
    with wf.store.tx() as conn:
        req = reqs.lock(conn, request_id)
        if req["state"] != states.AWAITING_APPROVAL or req["decided_by"]:
            raise DecisionConflict(decided_line(req))
        approvals = audit.approvals(conn, subject)
        if approve and actor in approvals:
            raise DecisionConflict(
                f"{actor} already approved request {request_id} at "
                f"{approvals[actor]:%Y-%m-%d %H:%M:%S} UTC; waiting for "
                f"{quorum - len(approvals)} more approval(s)")
        audit.record(conn, actor=actor, action="approve" if approve else "reject",
                     subject=subject, detail={"note": note, **(detail or {})})
        if not approve:
            reqs.transition(conn, request_id, expect=(states.AWAITING_APPROVAL,),
                            to=states.REJECTED, actor=actor,
                            reason=f"rejected by {actor}" + (f": {note}" if note else ""))
            reqs.set_decided_by(conn, request_id, actor)
            _enqueue(wf, conn, req, "rejected")
            return {"request": request_id, "state": states.REJECTED, "decided_by": actor}
        approvals[actor] = utcnow()
        if len(approvals) < quorum:
            reqs.note(conn, request_id, actor,
                      f"approved by {actor} ({len(approvals)} of {quorum})", notify=True)
            return {"request": request_id, "state": states.AWAITING_APPROVAL,
                    "approvals": sorted(approvals)}
        moves.begin(conn, req, expect=(states.AWAITING_APPROVAL,),
                    alias=cfg["aliases"]["champion"], from_version=req["compared_with"],
                    kind=ledger.PROMOTE, actor=actor)
        _enqueue(wf, conn, req, "promote")
    return {"request": request_id, "state": "approved", "decided_by": actor}


def _enqueue(wf, conn, req: dict, step: str) -> None:
    wf.queue.enqueue(conn, kind="request", key=keys.request_job(req["id"], step),
                     payload={"request_id": req["id"]}, lock_key=keys.model_lock(req["model"]))


def decided_line(req: dict) -> str:
    """Who decided a request and when, for the one who clicked too late."""
    if req["decided_by"]:
        return (f"request {req['id']} was already decided by {req['decided_by']} at "
                f"{req['updated_at']:%Y-%m-%d %H:%M:%S} UTC ({req['state']}"
                + (f": {req['reason']})" if req["reason"] else ")"))
    return (f"request {req['id']} is {req['state']}, not waiting for approval"
            + (f" ({req['reason']})" if req["reason"] else ""))


def expire(wf, now=None) -> list[int]:
    """End requests that waited for approval longer than the policy allows."""
    now = now or utcnow()
    expired = []
    with wf.store.read() as conn:
        waiting = reqs.list_(conn, state=states.AWAITING_APPROVAL, limit=1000)
    for req in waiting:
        hours = wf.policy.for_model(req["model"])["approval"]["expiry_hours"]
        if req["decided_by"] or req["updated_at"] > now - timedelta(hours=hours):
            continue
        with wf.store.tx() as conn:
            if reqs.transition(conn, req["id"], expect=(states.AWAITING_APPROVAL,),
                               to=states.REJECTED, actor="policy",
                               reason=f"approval expired after {hours:g} h"):
                reqs.set_decided_by(conn, req["id"], "policy")
                _enqueue(wf, conn, req, "expired")
                expired.append(req["id"])
    return expired
