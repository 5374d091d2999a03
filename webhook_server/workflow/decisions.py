"""Deciding a request that waits for approval: approve, reject, expire.

The request row is locked for the whole decision (``SELECT ... FOR UPDATE`` on
PostgreSQL), so two approvals at the same moment are counted one after the other and the
quorum is met exactly once. The approval that meets the quorum records the promotion's
intent (request ``promoting`` + ledger intent) in the same transaction and queues the job
that performs it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from webhook_server import contract
from webhook_server.core import identity
from webhook_server.intake import tell
from webhook_server.intake.events import ROLLBACK_ORIGIN
from webhook_server.jobs.queue import JobQueue
from webhook_server.store import audit, ledger, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Request
from webhook_server.workflow import moves, permissions
from webhook_server.workflow.deps import Deps
from webhook_server.workflow.errors import (
    DecisionConflict,
    DecisionRefused,
    NotAllowed,
    StaleEvidence,
)


def approver(policy, model: str, actor: str,
             groups: frozenset[str] = frozenset()) -> str | None:
    """The person ``actor`` is, when that person may decide ``model``'s requests: listed
    in ``approval.approvers`` (people), or a member of the policy's Slack user group
    (``groups``, looked up by the caller). None otherwise: never "anyone"."""
    return permissions.may(policy, "approve", actor, model=model, groups=groups)


def may_decide(policy, model: str, actor: str, groups: frozenset[str] = frozenset()) -> bool:
    return approver(policy, model, actor, groups) is not None


def evidence_of(req: Request) -> dict:
    """What an approval approves (``Request.approval_evidence``)."""
    return req.approval_evidence()


def evidence_digest(req: Request) -> str:
    """What the page, the Slack buttons and ``podium approve --evidence`` carry, so an
    approval approves what its approver saw (``Request.evidence_digest``)."""
    return req.evidence_digest()


def _action(req: Request, approve: bool) -> str:
    if req.origin == ROLLBACK_ORIGIN:
        return "rollback"  # agreeing to (or refusing) a rollback is for who may roll back
    return "approve" if approve else "reject"


def _stale(conn, req: Request, seen: str) -> StaleEvidence:
    """The approver saw other evidence than the request's current one: what changed."""
    since = reqs.last_event_into(conn, req.id, states.AWAITING_APPROVAL)
    why = f" ({since.note})" if since is not None and since.note else ""
    now = evidence_of(req)
    return StaleEvidence(
        f"the evidence you saw (digest {seen[:12]}) is no longer current (now "
        f"{evidence_digest(req)[:12]}){why}: now checks {now['checks'] or '-'}, compared with "
        f"v{now['compared_with'] or '-'}: {now['comparison'] or 'no comparison'}; look again "
        "and decide on what is shown now. Nothing was counted.")


def _requester_people(policy, req: Request) -> set[str]:
    return {p for i in req.requester_identities()
            if (p := identity.person(policy, i)) is not None}


def decide(deps: Deps, request_id: int, actor: str, approve: bool, note: str | None = None, *,
           detail: dict | None = None, groups: frozenset[str] = frozenset(),
           evidence: str | None = None) -> dict:
    """Approve or reject a request waiting for approval (CLI, API, Slack, page). A rejection
    needs a reason (``note``). ``evidence``: the digest of the evidence the approver saw; a
    digest that is no longer current is refused (StaleEvidence) and nothing is counted."""
    subject = contract.request_subject(request_id)
    with deps.store.read() as conn:
        req = reqs.get(conn, request_id)
    if req is None:
        raise DecisionConflict(f"request {request_id} does not exist")
    who = permissions.authorize(deps.store, deps.policy, _action(req, approve), actor,
                                model=req.model, subject=subject, groups=groups,
                                detail={"approve": approve, **(detail or {})})
    cfg = deps.policy_for(req.model)
    rollback = req.origin == ROLLBACK_ORIGIN
    quorum = cfg.rollback.quorum if rollback else cfg.approval.quorum
    with deps.store.tx() as conn:
        req = reqs.lock(conn, request_id)
        if req.state != states.AWAITING_APPROVAL or req.decided_by:
            raise DecisionConflict(decided_line(req))
        if not approve and not (note or "").strip():
            raise DecisionRefused("a rejection needs a reason")
        if evidence is not None and evidence != evidence_digest(req):
            raise _stale(conn, req, evidence)
        if _expired(conn, req, cfg.approval.expiry_hours, deps.clock()):
            _expire(deps.queue, conn, req, cfg.approval.expiry_hours)
            return {"request": request_id, "state": states.REJECTED, "decided_by": "policy",
                    "reason": f"approval expired after {cfg.approval.expiry_hours:g} h"}
        if (approve and not rollback and who in _requester_people(deps.policy, req)
                and not cfg.approval.allow_self_approval):
            audit.record(conn, actor=actor, action="denied", subject=subject,
                         detail={"approve": True, "why": "self-approval", **(detail or {})})
            raise NotAllowed(f"{actor} ({who}) requested this promotion and may not approve "
                             "it (policy allow_self_approval: false; requested by "
                             f"{', '.join(req.requester_identities())})")
        current = evidence_of(req)
        approvals = _approvals(conn, deps.policy, subject, current)
        if approve and who in approvals:
            raise DecisionConflict(
                f"{who} already approved request {request_id} at "
                f"{approvals[who]:%Y-%m-%d %H:%M:%S} UTC; waiting for "
                f"{quorum - len(approvals)} more approval(s)")
        audit.record(conn, actor=actor, action="approve" if approve else "reject",
                     subject=subject, detail={"note": note, "person": who,
                                              "evidence": current,
                                              "evidence_sha256": evidence_digest(req),
                                              **(detail or {})})
        if not approve:
            tell.transition(conn, request_id, expect=(states.AWAITING_APPROVAL,),
                            to=states.REJECTED, actor=actor,
                            reason=f"rejected by {actor}: {note.strip()}")
            reqs.set_decided_by(conn, request_id, actor)
            _enqueue(deps.queue, conn, req, "rejected")
            return {"request": request_id, "state": states.REJECTED, "decided_by": actor}
        approvals[who] = deps.clock()
        if len(approvals) < quorum:
            tell.note(conn, request_id, actor,
                      f"approved by {actor} ({len(approvals)} of {quorum})")
            return {"request": request_id, "state": states.AWAITING_APPROVAL,
                    "approvals": sorted(approvals)}
        if rollback:  # agreed: the job validates and moves under the model lock
            tell.transition(conn, request_id, expect=(states.AWAITING_APPROVAL,),
                            to=states.QUEUED, actor=actor,
                            reason=f"rollback agreed by {', '.join(sorted(approvals))}")
            _enqueue(deps.queue, conn, req, "agreed")
            return {"request": request_id, "state": "approved", "decided_by": actor}
        intent = moves.begin(conn, req, expect=(states.AWAITING_APPROVAL,),
                             alias=cfg.aliases.champion, from_version=req.compared_with,
                             kind=ledger.PROMOTE, actor=actor)
        _enqueue(deps.queue, conn, req, f"promote-{intent}")  # one job per move (approved again
        # after a new comparison: a new move, a new job)
    return {"request": request_id, "state": "approved", "decided_by": actor}


def _approvals(conn, policy, subject: str, evidence: dict) -> dict:
    """person -> time of their approval of this evidence (earlier evidence is void)."""
    out = {}
    for row in reversed(audit.entries(conn, subject=subject, action="approve", limit=1000)):
        detail = row["detail"] or {}
        if detail.get("evidence", evidence) != evidence:
            continue
        who = detail.get("person") or identity.person(policy, row["actor"])
        out.setdefault(who, row["at"])
    return out


def _expired(conn, req: Request, hours: float, now: datetime) -> bool:
    since = reqs.last_event_into(conn, req.id, states.AWAITING_APPROVAL)
    at = since.at if since else req.updated_at
    return at <= now - timedelta(hours=hours)


def _expire(queue: JobQueue, conn, req: Request, hours: float) -> bool:
    if tell.transition(conn, req.id, expect=(states.AWAITING_APPROVAL,),
                       to=states.REJECTED, actor="policy",
                       reason=f"approval expired after {hours:g} h"):
        reqs.set_decided_by(conn, req.id, "policy")
        _enqueue(queue, conn, req, "expired")
        return True
    return False


def _enqueue(queue: JobQueue, conn, req: Request, step: str) -> None:
    queue.enqueue(conn, kind="request", key=contract.request_job(req.id, step),
                     payload={"request_id": req.id}, lock_key=contract.model_lock(req.model))


def decided_line(req: Request) -> str:
    """Who decided a request and when, for the one who clicked too late."""
    if req.decided_by:
        return (f"request {req.id} was already decided by {req.decided_by} at "
                f"{req.updated_at:%Y-%m-%d %H:%M:%S} UTC ({req.state}"
                + (f": {req.reason})" if req.reason else ")"))
    return (f"request {req.id} is {req.state}, not waiting for approval"
            + (f" ({req.reason})" if req.reason else ""))


def expire(deps: Deps, now: datetime | None = None) -> list[int]:
    """End requests that waited for approval longer than the policy allows (the scan; a
    decision arriving after the expiry ends the request the same way)."""
    now = now or deps.clock()
    expired = []
    with deps.store.read() as conn:
        waiting = reqs.list_(conn, state=states.AWAITING_APPROVAL, limit=1000)
    for req in waiting:
        hours = deps.policy_for(req.model).approval.expiry_hours
        if req.decided_by or req.updated_at > now - timedelta(hours=hours):
            continue
        with deps.store.tx() as conn:
            if _expire(deps.queue, conn, req, hours):
                expired.append(req.id)
    return expired
