"""The request workflow: a durable, resumable step machine (see ``steps``).

- ``steps``: the request job, resumed from the stored state after any failure;
- ``gates``: the gate protocol: what the checks and the comparison answer, typed;
- ``moves``: alias moves, intent recorded before the effect, read back after it;
- ``decisions``: approve / reject / expire, under a row lock;
- ``rollback``: a rollback is a request whose job runs under the model lock;
- ``deps``: what the modules work with (``Deps``), ``fenced``: the registry a job sees;
- ``report``: the JSON and Markdown report on the version's run.

Invariants (tests/unit/workflow/test_faults.py fails each MLflow call in turn to prove
them): every request ends in a terminal state or waits for a person; the champion alias
equals the ledger's last applied move; a promoted version is tagged ``promoted`` and its
predecessor ``archived``; one ledger row per move; one decision per request.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from sqlalchemy import Connection

from podium_policy.schema import Policy
from webhook_server import contract
from webhook_server.adapters.registry import Registry
from webhook_server.intake import tell
from webhook_server.intake.intake import Intake
from webhook_server.jobs.queue import Job, JobQueue
from webhook_server.store import Store, ledger, states
from webhook_server.store import transition_requests as reqs
from webhook_server.workflow import decisions, guard, permissions
from webhook_server.workflow import rollback as rollbacks
from webhook_server.workflow.deps import Deps
from webhook_server.workflow.errors import (
    DecisionConflict,
    DecisionRefused,
    Deferred,
    NotAllowed,
    RollbackRefused,
    StaleEvidence,
)
from webhook_server.workflow.fenced import FencedRegistry
from webhook_server.workflow.gates import (
    CheckReport,
    ComparisonReport,
    GateFailed,
    Gates,
    TransientGateError,
)
from webhook_server.workflow.steps import RequestRun

__all__ = ["CheckReport", "ComparisonReport", "DecisionConflict", "DecisionRefused", "Deferred",
           "Deps", "GateFailed", "Gates", "NotAllowed", "RollbackRefused", "StaleEvidence",
           "TransientGateError", "Workflow"]
log = logging.getLogger(__name__)
DEAD_ACTOR = "worker:dead-job"


class Workflow:
    """The workflow's entry points; its modules get ``deps`` (frozen). Setting ``store``,
    ``queue``, ``registry``, ``policy``, ``gates`` or ``clock`` (tests) replaces ``deps``."""

    def __init__(self, store: Store, queue: JobQueue, registry: Registry, policy: Policy,
                 gates: Gates, intake: Intake | None = None,
                 challenger_alias: str = "challenger") -> None:
        self.deps = Deps(store=store, queue=queue, intake=intake or Intake(store, queue),
                         registry=registry, policy=policy, gates=gates,
                         challenger_alias=challenger_alias)

    def _swap(self, **parts) -> None:
        self.deps = dataclasses.replace(self.deps, **parts)

    store = property(lambda self: self.deps.store,
                     lambda self, value: self._swap(store=value))
    queue = property(lambda self: self.deps.queue,
                     lambda self, value: self._swap(queue=value))
    registry = property(lambda self: self.deps.registry,
                        lambda self, value: self._swap(registry=value))
    policy = property(lambda self: self.deps.policy,
                      lambda self, value: self._swap(policy=value))
    gates = property(lambda self: self.deps.gates,
                     lambda self, value: self._swap(gates=value))
    clock = property(lambda self: self.deps.clock,
                     lambda self, value: self._swap(clock=value))

    # --- the job -----------------------------------------------------------------------

    def handle(self, job: Job) -> None:
        deps = self.deps
        try:
            RequestRun(deps, job).run()
        finally:
            if deps.gates.release is not None:
                deps.gates.release()

    def on_dead(self, conn: Connection, payload: dict, error: str) -> None:
        """A request job went dead: its request ends ``failed`` with the reason (in the
        transaction that buries the job; the outbox posts it), and a follow-up job writes
        the status on the version once MLflow answers. So no request stays open with no
        job to move it. A promotion whose intent is unsettled keeps its intent: ``podium
        replay`` resumes it, and other requests of the model wait until then."""
        request_id = payload.get("request_id")
        req = reqs.get(conn, request_id) if request_id is not None else None
        if req is None or req.state in states.TERMINAL:
            return
        if req.state == states.AWAITING_APPROVAL:
            return  # it waits for a person, not for the job; a decision queues the next
        if tell.transition(conn, request_id, expect=states.OPEN, to=states.FAILED,
                           actor=DEAD_ACTOR,
                           reason=f"job gave up in state {req.state}: {error[:400]} "
                                  "(podium replay brings it back)"):
            failures = len([e for e in reqs.history(conn, request_id)
                            if e.to_state == states.FAILED])
            self.deps.queue.enqueue(conn, kind="request",
                               key=contract.request_job(request_id, f"failed-{failures}"),
                               payload={"request_id": request_id},
                               lock_key=contract.model_lock(req.model))

    # --- decisions ---------------------------------------------------------------------

    def may_decide(self, model: str, actor: str, groups: frozenset[str] = frozenset()) -> bool:
        return decisions.may_decide(self.deps.policy, model, actor, groups)

    def decide(self, request_id: int, actor: str, approve: bool, note: str | None = None, *,
               detail: dict | None = None, groups: frozenset[str] = frozenset(),
               evidence: str | None = None) -> dict:
        return decisions.decide(self.deps, request_id, actor, approve, note, detail=detail,
                                groups=groups, evidence=evidence)

    def authorize(self, action: str, actor: str | None, *, model: str | None = None,
                  subject: str | None = None, groups: frozenset[str] = frozenset()) -> str:
        """The one permission check (``permissions``): the person, or NotAllowed."""
        return permissions.authorize(self.deps.store, self.deps.policy, action, actor, model=model,
                                     subject=subject, groups=groups)

    def expire_approvals(self, now=None) -> list[int]:
        return decisions.expire(self.deps, now)

    def check_shadowing(self, interval_s: int, now: float | None = None) -> list[int]:
        """Queue a look at every request waiting for live evidence (``shadowing``): its job
        ``request:<id>:live-<bucket>``, so a trigger fired twice in an interval queues one.
        The request's job decides (``steps``), under the model lock. Ids queued."""
        bucket = int((time.time() if now is None else now) // interval_s)
        queued = []
        with self.deps.store.tx() as conn:
            for req in reqs.list_(conn, state=states.SHADOWING, limit=1000):
                if self.deps.queue.enqueue(conn, kind="request",
                                           key=contract.request_job(req.id, f"live-{bucket}"),
                                           payload={"request_id": req.id},
                                           lock_key=contract.model_lock(req.model)):
                    queued.append(req.id)
        return queued

    # --- rollback ----------------------------------------------------------------------

    def request_rollback(self, model: str, actor: str, to: str | None = None, *,
                         groups: frozenset[str] = frozenset()) -> dict:
        """Record a rollback request through the intake and queue its job (a worker runs
        it under the model lock); the caller follows the request to its end."""
        return rollbacks.request(self.deps, model, actor, to, groups=groups)

    def check_champions(self) -> dict[str, str]:
        """The reconciler's look at every model Podium moved: aliases moved outside Podium
        (reverted, or recorded, as ``aliases.protect`` says: ``guard``) and champion files
        changed since their promotion (alerted once). Model -> what was found."""
        deps = self.deps
        with deps.store.read() as conn:
            models = ledger.models(conn)
        found = {}
        for model in models:
            moved = guard.look(deps, model)
            if moved:
                found[model] = ", ".join(f"{a} at v{v}" for a, v in moved.items())
            if (files := guard.check_files(deps, model)) is not None:
                found[model] = (found.get(model, "") + f" files changed ({files[:12]})").strip()
        return found

    def revert(self, job: Job) -> None:
        """The ``revert`` job (``guard``): an alias moved outside Podium goes back."""
        deps = self.deps
        guard.handle(deps, FencedRegistry(deps.registry, job.fence), job)


def revive(conn: Connection, request_id: int) -> str | None:
    """Undo ``Workflow.on_dead`` when ``podium replay`` requeues the job (same
    transaction): the request goes back to the state it failed in. Returns that state, or
    None when the request did not fail because its job died."""
    event = reqs.last_event_into(conn, request_id, states.FAILED)
    req = reqs.get(conn, request_id)
    if (req is None or req.state != states.FAILED or event is None
            or event.actor != DEAD_ACTOR):
        return None
    back = event.from_state
    if any(r["id"] != request_id and r["origin"] == req.origin
           and r["target"] == req.target
           for r in reqs.open_for_version(conn, req.model, req.version)):
        return None  # the tag was set again meanwhile: that request carries it now
    tell.transition(conn, request_id, expect=(states.FAILED,), to=back, actor="replay",
                    reason="replayed: resuming")
    return back
