"""Rollback: a request (origin ``rollback``) whose job moves the champion back.

Only to a version that Podium made champion before (the ledger's promotions and
rollbacks), never to anything else: a version set by hand, or never checked, cannot be made
champion this way. The request is validated when it is asked for (a clear 4xx / exit 1) and
again by its job under the model lock, which records the move's intent and performs it
like a promotion, so a rollback never races a promotion of the same model.
"""

from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import Connection

from webhook_server import contract
from webhook_server.intake import tell
from webhook_server.jobs.queue import job_state
from webhook_server.store import audit, deliveries, ledger, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Request
from webhook_server.workflow import decisions, permissions
from webhook_server.workflow.errors import RollbackRefused

ROLLBACK_ORIGIN = "rollback"  # the origin of a rollback request


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


def request(wf, model: str, actor: str, to: str | None = None, *,
            groups: frozenset[str] = frozenset()) -> dict:
    """Record a rollback request and queue its job (with a rollback quorum over 1, the
    request waits for the others to agree). Raises NotAllowed, RollbackRefused."""
    who = permissions.authorize(wf.store, wf.policy, "rollback", actor, model=model,
                                groups=groups, detail={"to": to})
    cfg = wf.policy.for_model(model)
    alias = cfg.aliases.champion
    quorum = cfg.rollback.quorum
    with wf.store.tx() as conn:
        current = ledger.current(conn, model, alias)
        target = to if to is not None else ledger.rollback_target(conn, model, alias, current)
        if problem := validate(conn, model, alias, target):
            raise problem
        body = json.dumps({"model": model, "to": target, "actor": actor})
        pk = deliveries.insert(conn, source=actor.split(":", 1)[0],
                               delivery_id=f"rollback:{uuid.uuid4().hex}",
                               event="rollback.request", status="accepted", detail=None,
                               body=body)
        state = states.QUEUED if quorum <= 1 else states.AWAITING_APPROVAL
        request_id = tell.create(conn, model=model, version=target, target="Production",
                                 raw_target="rollback", origin=ROLLBACK_ORIGIN,
                                 state=state, delivery_pk=pk, requested_by=actor,
                                 actor=actor, reason=f"rollback from v{current} to v{target}"
                                 + (f": waiting for {quorum - 1} more to agree"
                                    if quorum > 1 else ""))
        if quorum > 1:  # the one who asks agrees: their approval is the first
            req = reqs.get(conn, request_id)
            audit.record(conn, actor=actor, action="approve",
                         subject=contract.request_subject(request_id),
                         detail={"note": "asked for the rollback", "person": who,
                                 "evidence": decisions.evidence_of(req)})
            return {"request": request_id, "model": model, "from": current, "to": target,
                    "state": state, "approvals": [who], "quorum": quorum}
        wf.queue.enqueue(conn, kind="request", key=contract.request_job(request_id),
                         payload={"request_id": request_id}, lock_key=contract.model_lock(model))
    return {"request": request_id, "model": model, "from": current, "to": target,
            "state": states.QUEUED}


def run(wf, request_id: int, timeout_s: float = 120, poll_s: float = 0.1) -> Request:
    """See the rollback's job through: claim and run it here (under the model lock, with a
    lease and heartbeat like any worker) unless a worker already has it; then wait."""
    from webhook_server.jobs.worker import Worker

    worker = Worker(wf.queue, {"request": wf.handle}, poll_s=poll_s)
    key = contract.request_job(request_id)
    deadline = time.monotonic() + timeout_s
    while True:
        with wf.store.read() as conn:
            req = reqs.get(conn, request_id)
            job = job_state(conn, key)
        if (req.state in states.TERMINAL and job in ("done", "dead")
                or time.monotonic() >= deadline):
            return req  # ended, and its tags written (or the job gave up: alerted)
        if worker.run_once(key=key) is None:
            time.sleep(poll_s)
