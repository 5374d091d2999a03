"""The request job: a step machine that resumes from the stored state.

Each pass reads the request and runs the step of its state; every step records its result
in the store (compare-and-set on the state) before the next one starts, so a job retried
after an exception, a crash or a lost lease picks up where the store says it is:

    queued ─▶ checking ─▶ comparing ─▶ [awaiting_approval] ─▶ promoting ─▶ promoted
       │          │          │ └──────────────▶ rejected           │ (alias moved
       │          │          └▶ [shadowing] ─▶ rejected | inconclusive  │  elsewhere:
       │          └─▶ rejected | promoting (staging alias) ─▶ staged  │  back to
       └─▶ failed (no such version) | archived | rejected          │  comparing)
    a rollback request: queued ─▶ promoting ─▶ promoted | rejected ◀┘

``shadowing`` (``comparison.live``, ``shadowing.py``): passed the holdout, the version waits on
the shadow alias until live outcomes decide (on to approval or the move), reject it, or not.

A terminal request's job only writes its tags again (idempotent), so a crash after the
decision and before the tags is repaired by the retry.
"""

from __future__ import annotations

import logging

from podium_policy import verdict
from podium_policy.schema import ModelPolicy
from webhook_server.contract import (
    TAG_CHECKS,
    TAG_COMPARISON,
    TAG_REQUEST_ID,
    TAG_STATUS,
)
from webhook_server.core import logs, tracing
from webhook_server.intake import tell
from webhook_server.jobs.queue import Job
from webhook_server.jobs.worker import PermanentJobError
from webhook_server.store import counters, ledger, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Request
from webhook_server.workflow import asked, evidence, finish, moves, shadowing
from webhook_server.workflow.check_tags import CheckTags, tags_for
from webhook_server.workflow.deps import Deps
from webhook_server.workflow.errors import Deferred
from webhook_server.workflow.fenced import FencedRegistry
from webhook_server.workflow.gates import INCONCLUSIVE, GateFailed, TransientGateError
from webhook_server.workflow.rollback import ROLLBACK_ORIGIN, begin_rollback

log = logging.getLogger(__name__)
MAX_RECOMPARE = 3


class RequestRun:
    """One run of one request's job."""

    def __init__(self, deps: Deps, job: Job) -> None:
        self.deps, self.job = deps, job
        self.store, self.gates = deps.store, deps.gates
        self.registry = FencedRegistry(deps.registry, job.fence)
        self.tag_writer = CheckTags(self.registry)  # the check tags, beside the comparison
        self.recompared = 0
        self.handed_over = False  # this job put the request in front of a person

    def run(self) -> None:
        req = self._get()
        with logs.bind(request_id=req.id, model=req.model, version=req.version):
            if self.job.attempts > 1 and req.state not in (states.QUEUED, states.CHECKING):
                self.tag_writer.repair(req)  # an earlier attempt's may not have finished
            ended_by = None
            try:
                self._steps(req)
            except BaseException as exc:
                ended_by = exc
                raise
            finally:
                self.tag_writer.close(ended_by)

    def _steps(self, req: Request) -> None:
        for _ in range(20):  # each pass moves the request one step (or ends the run)
            if req.state in states.TERMINAL:
                self._finish(req)
                return
            step = {states.QUEUED: self._queued, states.CHECKING: self._checking,
                    states.COMPARING: self._comparing, states.PROMOTING: self._promoting,
                    states.SHADOWING: self._shadowing}.get(req.state)
            if step is None:  # awaiting approval: a decision queues the next job
                return
            with tracing.span(f"step {req.state}", attributes=tracing.attrs(
                    request_id=req.id, model=req.model, version=req.version,
                    target=req.target)) as current:
                step(req)
                before, req = req.state, self._get()
                tracing.set_attributes(current, {"podium.state_after": req.state})
            if before == req.state == states.SHADOWING:  # no decision yet: the next look
                return  # (the scheduler's check_shadowing) queues the next job
            if self.handed_over:  # a decision queues its own job, even one made already:
                return  # the click's job makes the move (and its trace is the click's)
        raise RuntimeError(f"request {req.id} did not settle (state {req.state})")

    # --- steps -------------------------------------------------------------------------

    def _queued(self, req: Request) -> None:
        self._wait_for_others(req)
        cfg = self._cfg(req)
        if req.origin == ROLLBACK_ORIGIN:
            with self.store.tx() as conn:  # under the model lock: the ledger decides
                begin_rollback(conn, req, cfg.aliases.champion)
            return
        ended = asked.not_standing(self.registry, req, self.deps.challenger_alias)
        if ended:  # no such version, or an ask made in the registry withdrawn since
            self._end(req, *ended)
            return
        if req.target == "Archived":
            self._archive(req, cfg)
            return
        if req.requested_by in (None, "reconciler"):  # asked in the registry: who counts
            named = self.registry.requesters(req.model, req.version)
            with self.store.tx() as conn:
                reqs.set_requesters(conn, req.id, named)
                if named:
                    reqs.set_requested_by(conn, req.id, named[0])
            if cfg.approval.requesters == "authenticated" and req.target != "Archived":
                self._end(req, states.REJECTED, "policy",
                          "this model accepts only requests made through Podium (podium "
                          "request, POST /api/v1/requests, the release job): a tag or alias "
                          "set in the registry names no author Podium can check")
                return
        self._move(req, states.CHECKING, "worker")

    def _checking(self, req: Request) -> None:
        self._wait_for_others(req)
        try:
            with tracing.span("sandbox check", attributes=tracing.attrs(
                    request_id=req.id, model=req.model, version=req.version)):
                report = self.gates.check(f"models:/{req.model}/{req.version}")
        except TransientGateError:
            counters.incr(self.store, counters.GATE_FAILURES, "check|transient")
            raise  # MLflow unreachable, no sandbox could start: the job retries
        except GateFailed as exc:  # no verdict, for good: the request fails with the reason
            counters.incr(self.store, counters.GATE_FAILURES, "check|failed")
            self._end(req, states.FAILED, "worker", exc.reason)
            return
        results = report.results
        failed = [r.name for r in results if not r.passed]
        files = report.model_sha256  # the bytes that were judged
        tags = tags_for(((r.name, r.passed) for r in results), files)
        self.tag_writer.write(req.model, req.version, tags)  # settled before the verdict
        checked = [r.as_json() for r in results]
        said = verdict.of_checks(failed, req.target)  # decided here: failed, or Staging
        kept = (evidence.keep(self.gates, self.registry, req, champion=None, checks=checked,
                              comparison=None, verdict=said) if said else None)
        with self.store.tx() as conn:
            if files:
                reqs.set_model_sha256(conn, req.id, files)
            reqs.summarise(conn, req.id, checks=tags[TAG_CHECKS])
            reqs.save_evidence(conn, req.id, {"checks": checked, "holdout": report.holdout,
                                              **({"bundle": kept} if kept else {})})
            if kept:
                reqs.set_bundle(conn, req.id, kept["uri"], kept["sha256"])
        if said is not None and said.kind == verdict.REJECT:
            self._end(req, states.REJECTED, "policy", said.reason)
            return
        cfg = self._cfg(req)
        if req.target == "Staging":
            alias = cfg.aliases.staging
            current = self.registry.alias_version(req.model, alias)  # no MLflow call in a tx
            with self.store.tx() as conn:
                moves.begin(conn, req, expect=(states.CHECKING,), alias=alias,
                            from_version=current, kind=ledger.PROMOTE, actor="policy")
            return
        self._move(req, states.COMPARING, "worker")

    def _comparing(self, req: Request) -> None:
        self._wait_for_others(req)
        cfg = self._cfg(req)
        champion = self.registry.alias_version(req.model, cfg.aliases.champion)
        if champion == req.version:  # nothing to move, nothing for the ledger
            self._end(req, states.PROMOTED, "policy", f"v{champion} is already the champion")
            return
        if champion is not None:
            try:
                with tracing.span("sandbox compare", attributes=tracing.attrs(
                        request_id=req.id, model=req.model, version=req.version,
                        champion=champion)):
                    comparison = self.gates.compare(req.model, req.version, champion)
            except TransientGateError:
                counters.incr(self.store, counters.GATE_FAILURES, "compare|transient")
                raise  # MLflow unreachable, no sandbox could start: the job retries
            except GateFailed as exc:  # e.g. the champion could not be scored
                counters.incr(self.store, counters.GATE_FAILURES, "compare|failed")
                self._end(req, states.FAILED, "worker", exc.reason)
                return
            line = comparison.line()[:500]
            self.registry.set_tags(req.model, req.version, {TAG_COMPARISON: line})
            said = verdict.of_comparison(comparison.outcome, comparison.reasons,
                                         cfg.comparison)
            kept = self._keep(req, champion, comparison.as_json(), said)
            # comparison.live: a pass waits for live outcomes, on this alias
            alias = shadowing.alias_of(cfg) if said.kind == verdict.PROMOTE else None
            with self.store.tx() as conn:
                reqs.summarise(conn, req.id, comparison=line)
                reqs.set_compared_with(conn, req.id, champion)
                evidence = {**req.evidence_json(), "comparison": comparison.as_json()}
                evidence.pop("live", None)  # compared again: live evidence starts again
                if comparison.holdout:
                    evidence["holdout"] = comparison.holdout
                if alias is not None:  # the alias it goes on, kept before it is set
                    evidence["live"] = {"alias": alias}
                self._save(conn, req, evidence, kept)
            if said.kind != verdict.PROMOTE:
                new = " new" if req.compared_with else ""  # compared again
                why = "; ".join(comparison.reasons)
                if comparison.outcome == INCONCLUSIVE:
                    if said.kind == verdict.ASK:  # a person decides
                        self._move(req, states.AWAITING_APPROVAL, "policy",
                                   f"inconclusive comparison with the{new} champion "
                                   f"v{champion}: {why}; waiting for "
                                   f"{cfg.approval.quorum} approval(s)")
                        return
                    self._end(req, states.REJECTED, req.decided_by or "policy",
                              f"inconclusive comparison with the{new} champion v{champion}: "
                              f"{why}")
                    return
                self._end(req, states.REJECTED, req.decided_by or "policy",
                          f"loses the comparison with the{new} champion v{champion}: {why}")
                return
            if alias is not None:  # the version waits for live outcomes (``shadowing``: its
                # first look puts it on the alias, so the alias webhook finds it shadowing)
                self._move(req, states.SHADOWING, "policy", shadowing.waiting_line(cfg, champion))
                return
        else:
            kept = self._keep(req, None, None, verdict.of_comparison(None, (), cfg.comparison))
            with self.store.tx() as conn:  # the first champion: nothing to compare with
                reqs.set_compared_with(conn, req.id, None)
                self._save(conn, req, req.evidence_json(), kept)
        self._passed(req, cfg, champion)

    def _passed(self, req: Request, cfg: ModelPolicy, champion: str | None) -> None:
        """The evidence passes: a person approves (if asked for), else the intent is recorded."""
        if req.decided_by is None and "Production" in cfg.approval.targets:
            again = ("; again: the champion moved and the comparison was made again, so "
                     "earlier approvals do not count" if (req.reason or "").startswith(
                         "champion moved") else "")
            self._move(req, states.AWAITING_APPROVAL, "policy",
                       f"waiting for {cfg.approval.quorum} approval(s){again}")
            return
        with self.store.tx() as conn:
            moves.begin(conn, req, expect=(req.state,),
                        alias=cfg.aliases.champion, from_version=champion,
                        kind=ledger.PROMOTE, actor=req.decided_by or "policy")

    def _shadowing(self, req: Request) -> None:
        """One look at the live evidence (``shadowing``): decide, or keep waiting."""
        self._wait_for_others(req)
        cfg = self._cfg(req)
        if shadowing.alias_of(cfg) is None:  # the policy no longer asks: the holdout decides
            return self._passed(req, cfg, req.compared_with)
        if self.gates.live is None:
            return self._end(req, states.FAILED, "worker", "the policy asks for live evidence "
                             "and this worker's judge has no live comparison")
        withdrawn = shadowing.put_on_alias(self.store, self.registry, req)
        if withdrawn:  # a person moved or removed the shadow alias
            return self._end(req, states.CANCELLED, "worker", withdrawn)
        req = self._get()
        moved = self.registry.alias_version(req.model, cfg.aliases.champion)
        if moved != req.compared_with:  # compared on the holdout with another champion
            self._move(req, states.COMPARING, "worker",
                       f"champion moved to v{moved} while shadowing: comparing again")
            return
        with self.store.read() as conn:  # live, the ledger's champion is the reference
            champion = ledger.current(conn, req.model, cfg.aliases.champion) or moved
            since = reqs.last_event_into(conn, req.id, states.SHADOWING)
        now = self.deps.clock()
        since = since.at if since else req.updated_at  # this request's pairs only: not an
        # earlier request's of the same version, nor predictions logged before it waited
        figures = self.gates.live(req.model, req.version, champion, cfg,
                                  since=since).as_json()
        decision, why = shadowing.decide(cfg, figures, since, now)
        with self.store.tx() as conn:
            reqs.save_evidence(conn, req.id, {**req.evidence_json(), "live": shadowing.recorded(
                cfg, req, figures, decision, now)})
            if decision == shadowing.PROMOTE:
                tell.note(conn, req.id, "policy", why)
        if decision == shadowing.PROMOTE:  # on as after a holdout pass
            self._passed(self._get(), cfg, req.compared_with)
        elif decision is not None:  # rejected | inconclusive
            self._end(req, shadowing.ENDS[decision], "policy", why)

    def _promoting(self, req: Request) -> None:
        cfg = self._cfg(req)
        champion = cfg.aliases.champion
        with self.store.read() as conn:
            intent = ledger.intent_for(conn, req.id)
            older = [i for i in ledger.open_intents(conn, req.model)
                     if intent is not None and i["id"] < intent["id"]]
        if intent is None:  # cannot happen (state and intent commit together); be safe
            with self.store.tx() as conn:
                tell.transition(conn, req.id, expect=(states.PROMOTING,),
                                to=states.COMPARING, actor="worker",
                                reason="promoting without a recorded move: comparing again")
            return
        if older:  # moves settle in the order they were decided
            raise Deferred(f"model {req.model} has an unfinished move of request "
                           f"{older[0]['request_id']}")
        self.tag_writer.settle()  # the checks are on the version before it is promoting
        self.registry.set_tags(req.model, req.version,
                               {TAG_REQUEST_ID: str(req.id), TAG_STATUS: states.PROMOTING})
        judged = req.model_sha256
        if req.origin == ROLLBACK_ORIGIN:  # back to the files it was champion with
            with self.store.read() as conn:
                judged = ledger.sha256_of(conn, req.model, req.version)
        outcome = moves.apply(self.store, self.registry, req,
                              strict_from=intent["alias"] == champion, stages=cfg.stages,
                              moved_away=lambda conn, seen: moves.moved_away(conn, req, seen),
                              judged_sha256=judged)
        if not outcome.done:
            self.recompared += 1
            if self.recompared > MAX_RECOMPARE:
                raise RuntimeError("the champion kept moving; will retry")

    # --- targets without checks --------------------------------------------------------

    def _archive(self, req: Request, cfg: ModelPolicy) -> None:
        champion = self.registry.alias_version(req.model, cfg.aliases.champion)
        if champion == req.version:
            self._end(req, states.REJECTED, "policy",
                      f"v{req.version} is the champion: promote a replacement or roll "
                      "back first")
            return
        if cfg.stages:
            self.registry.transition_stage(req.model, req.version, "Archived")
        self._end(req, states.ARCHIVED, "policy", None)

    # --- the end -----------------------------------------------------------------------

    def _finish(self, req: Request) -> None:
        """Tags of a terminal request (again, after a crash), the predecessor archived."""
        self.tag_writer.settle()  # a reader who sees the decision sees the checks
        finish.finish(self.store, self.registry, req, self._cfg(req))

    def _end(self, req: Request, to: str, actor: str, reason: str | None,
             expect: tuple[str, ...] | None = None) -> None:
        with self.store.tx() as conn:
            if tell.transition(conn, req.id, expect=expect or (req.state,), to=to,
                               actor=actor, reason=reason):
                reqs.set_decided_by(conn, req.id, actor)

    def _move(self, req: Request, to: str, actor: str, reason: str | None = None) -> None:
        with self.store.tx() as conn:
            moved = tell.transition(conn, req.id, expect=(req.state,), to=to,
                                    actor=actor, reason=reason)
        if moved:
            self.handed_over = to == states.AWAITING_APPROVAL
            if to != states.COMPARING:  # the check tags may still be going out meanwhile
                self.tag_writer.settle()
            self.registry.set_tags(req.model, req.version,
                                   {TAG_REQUEST_ID: str(req.id), TAG_STATUS: to})

    # --- helpers -----------------------------------------------------------------------

    def _keep(self, req: Request, champion: str | None, comparison: dict | None,
              said: verdict.Verdict) -> dict | None:
        """The decision's evidence bundle, logged (``evidence.keep``)."""
        return evidence.keep(self.gates, self.registry, req, champion=champion,
                             checks=req.evidence_json().get("checks") or [],
                             comparison=comparison, verdict=said)

    @staticmethod
    def _save(conn, req: Request, stored: dict, kept: dict | None) -> None:
        if kept:
            stored = {**stored, "bundle": kept}
            reqs.set_bundle(conn, req.id, kept["uri"], kept["sha256"])
        reqs.save_evidence(conn, req.id, stored)

    def _wait_for_others(self, req: Request) -> None:
        """One decision per model: an earlier request waiting for approval, or a move of
        another request not yet settled, goes first."""
        with self.store.read() as conn:
            others = [r for r in reqs.open_for_model(conn, req.model) if r.id != req.id]
            intents = [i for i in ledger.open_intents(conn, req.model)
                       if i["request_id"] != req.id]
        if intents:
            raise Deferred(f"model {req.model} has an unfinished move of request "
                           f"{intents[0]['request_id']}")
        if req.origin != ROLLBACK_ORIGIN and any(
                r.id < req.id and r.state in (states.AWAITING_APPROVAL, states.SHADOWING)
                for r in others):
            raise Deferred(f"model {req.model} has a request awaiting approval or live "
                           "evidence")

    def _cfg(self, req: Request) -> ModelPolicy:
        return self.deps.policy_for(req.model)

    def _get(self) -> Request:
        request_id = self.job.payload["request_id"]
        with self.store.read() as conn:
            req = reqs.get(conn, request_id)
        if req is None:
            raise PermanentJobError(f"request {request_id} does not exist")
        return req
