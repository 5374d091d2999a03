"""Deciding a request that waits for approval: approve, reject, expire.

The request row is locked for the whole decision (``SELECT ... FOR UPDATE`` on
PostgreSQL), so two approvals at the same moment are counted one after the other and the
quorum is met exactly once. The approval that meets the quorum records the promotion's
intent (request ``promoting`` + ledger intent) in the same transaction and queues the job
that performs it.
"""

from __future__ import annotations

from datetime import timedelta

from webhook_server import identity, keys
from webhook_server.store import audit, ledger, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Request
from webhook_server.store.schema import utcnow
from webhook_server.workflow import moves
from webhook_server.workflow.errors import DecisionConflict, DecisionRefused, NotAllowed


def approver(policy, model: str, actor: str,
             groups: frozenset[str] = frozenset()) -> str | None:
    """The person ``actor`` is, when that person may decide ``model``'s requests: listed
    in ``approval.approvers`` (people), or a member of the policy's Slack user group
    (``groups``, looked up by the caller). None otherwise: never "anyone"."""
    approval = policy.for_model(model).approval
    who = identity.person(policy, actor)
    if who is not None and who in approval.approvers:
        return who
    if actor.startswith("slack:") and actor[6:] in groups:
        return who
    return None


def may_decide(policy, model: str, actor: str, groups: frozenset[str] = frozenset()) -> bool:
    return approver(policy, model, actor, groups) is not None


def evidence_of(req: Request) -> dict:
    """What an approval approves: the version, the champion it was compared with, the
    checks and the comparison as they were shown. An approval of other evidence (the
    champion moved and the comparison was made again) does not count."""
    holdout = req.evidence_json().get("holdout") or {}
    return {"version": req.version, "compared_with": req.compared_with,
            "checks": req.checks, "comparison": req.comparison,
            "holdout_sha256": holdout.get("sha256")}


def decide(wf, request_id: int, actor: str, approve: bool, note: str | None = None, *,
           detail: dict | None = None, groups: frozenset[str] = frozenset()) -> dict:
    """Approve or reject a request waiting for approval (CLI, API, Slack). A rejection
    needs a reason (``note``)."""
    subject = keys.request_subject(request_id)
    with wf.store.read() as conn:
        req = reqs.get(conn, request_id)
    if req is None:
        raise DecisionConflict(f"request {request_id} does not exist")
    who = approver(wf.policy, req.model, actor, groups)
    if who is None:
        with wf.store.tx() as conn:
            audit.record(conn, actor=actor, action="denied", subject=subject,
                         detail={"approve": approve, **(detail or {})})
        raise NotAllowed(f"{actor} is not an approver of {req.model}"
                         + _who_may(wf.policy, req.model))
    cfg = wf.policy.for_model(req.model)
    quorum = cfg.approval.quorum
    with wf.store.tx() as conn:
        req = reqs.lock(conn, request_id)
        if req.state != states.AWAITING_APPROVAL or req.decided_by:
            raise DecisionConflict(decided_line(req))
        if not approve and not (note or "").strip():
            raise DecisionRefused("a rejection needs a reason")
        if _expired(conn, req, cfg.approval.expiry_hours):
            _expire(wf, conn, req, cfg.approval.expiry_hours)
            return {"request": request_id, "state": states.REJECTED, "decided_by": "policy",
                    "reason": f"approval expired after {cfg.approval.expiry_hours:g} h"}
        requester = identity.person(wf.policy, req.requested_by)
        if approve and requester == who and not cfg.approval.allow_self_approval:
            audit.record(conn, actor=actor, action="denied", subject=subject,
                         detail={"approve": True, "why": "self-approval", **(detail or {})})
            raise NotAllowed(f"{actor} ({who}) requested this promotion and may not approve "
                             "it (policy allow_self_approval: false)")
        evidence = evidence_of(req)
        approvals = _approvals(conn, wf.policy, subject, evidence)
        if approve and who in approvals:
            raise DecisionConflict(
                f"{who} already approved request {request_id} at "
                f"{approvals[who]:%Y-%m-%d %H:%M:%S} UTC; waiting for "
                f"{quorum - len(approvals)} more approval(s)")
        audit.record(conn, actor=actor, action="approve" if approve else "reject",
                     subject=subject, detail={"note": note, "person": who,
                                              "evidence": evidence, **(detail or {})})
        if not approve:
            reqs.transition(conn, request_id, expect=(states.AWAITING_APPROVAL,),
                            to=states.REJECTED, actor=actor,
                            reason=f"rejected by {actor}: {note.strip()}")
            reqs.set_decided_by(conn, request_id, actor)
            _enqueue(wf, conn, req, "rejected")
            return {"request": request_id, "state": states.REJECTED, "decided_by": actor}
        approvals[who] = utcnow()
        if len(approvals) < quorum:
            reqs.note(conn, request_id, actor,
                      f"approved by {actor} ({len(approvals)} of {quorum})", notify=True)
            return {"request": request_id, "state": states.AWAITING_APPROVAL,
                    "approvals": sorted(approvals)}
        intent = moves.begin(conn, req, expect=(states.AWAITING_APPROVAL,),
                             alias=cfg.aliases.champion, from_version=req.compared_with,
                             kind=ledger.PROMOTE, actor=actor)
        _enqueue(wf, conn, req, f"promote-{intent}")  # one job per move (approved again
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


def _who_may(policy, model: str) -> str:
    approval = policy.for_model(model).approval
    names = list(approval.approvers)
    if approval.slack_usergroup:
        names.append(f"members of Slack group {approval.slack_usergroup}")
    return f" (who may: {', '.join(names)})" if names else ""


def _expired(conn, req: Request, hours: float) -> bool:
    since = reqs.last_event_into(conn, req.id, states.AWAITING_APPROVAL)
    at = since.at if since else req.updated_at
    return at <= utcnow() - timedelta(hours=hours)


def _expire(wf, conn, req: Request, hours: float) -> bool:
    if reqs.transition(conn, req.id, expect=(states.AWAITING_APPROVAL,),
                       to=states.REJECTED, actor="policy",
                       reason=f"approval expired after {hours:g} h"):
        reqs.set_decided_by(conn, req.id, "policy")
        _enqueue(wf, conn, req, "expired")
        return True
    return False


def _enqueue(wf, conn, req: Request, step: str) -> None:
    wf.queue.enqueue(conn, kind="request", key=keys.request_job(req.id, step),
                     payload={"request_id": req.id}, lock_key=keys.model_lock(req.model))


def decided_line(req: Request) -> str:
    """Who decided a request and when, for the one who clicked too late."""
    if req.decided_by:
        return (f"request {req.id} was already decided by {req.decided_by} at "
                f"{req.updated_at:%Y-%m-%d %H:%M:%S} UTC ({req.state}"
                + (f": {req.reason})" if req.reason else ")"))
    return (f"request {req.id} is {req.state}, not waiting for approval"
            + (f" ({req.reason})" if req.reason else ""))


def expire(wf, now=None) -> list[int]:
    """End requests that waited for approval longer than the policy allows (the scan; a
    decision arriving after the expiry ends the request the same way)."""
    now = now or utcnow()
    expired = []
    with wf.store.read() as conn:
        waiting = reqs.list_(conn, state=states.AWAITING_APPROVAL, limit=1000)
    for req in waiting:
        hours = wf.policy.for_model(req.model).approval.expiry_hours
        if req.decided_by or req.updated_at > now - timedelta(hours=hours):
            continue
        with wf.store.tx() as conn:
            if _expire(wf, conn, req, hours):
                expired.append(req.id)
    return expired
