"""The request state machine.

Production: queued -> checking -> comparing -> [awaiting_approval] -> promoted | rejected |
failed | cancelled. Staging: queued -> checking -> staged | rejected. Archived: archived (never
the champion without a replacement).

Every move is a compare-and-set on the stored state, so a request cancelled (tag deleted)
or superseded while a step runs stops at the next move. Gates are enforced here, on typed
results: a failed check or a lost comparison ends the request ``rejected`` and the champion
alias is never touched. Promotion moves the champion alias only if it still points at the
version the comparison was made against; otherwise it compares again.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import insert, select

from webhook_server.constants import TAG_DECIDED_BY, TAG_REQUEST_ID, TAG_STATUS
from webhook_server.jobs.queue import Job, JobQueue
from webhook_server.jobs.worker import DeferJob, PermanentJobError
from webhook_server.notify.blocks import who
from webhook_server.policy import Policy
from webhook_server.registry import Registry
from webhook_server.store import Store, outbox, states
from webhook_server.store import ledger as ledger_repo
from webhook_server.store import requests as reqs
from webhook_server.store.schema import audit, requests, utcnow

log = logging.getLogger(__name__)
MAX_RECOMPARE = 3


class DecisionConflict(Exception):
    """The request is not waiting for a decision (HTTP 409)."""


class NotAllowed(Exception):
    """The actor may not decide this request (HTTP 403)."""


class Deferred(DeferJob):
    """Another request of the same model holds the decision: try again later."""


@dataclass
class Gates:
    """How checks and comparisons are run (a child process in the service)."""

    check: Callable[[str], list]  # model_uri -> [CheckResult]
    compare: Callable[[str, str, str], object]  # model, challenger, champion -> Comparison
    release: Callable[[], None] | None = None  # the job is done: free what check/compare hold


class Workflow:
    def __init__(self, store: Store, queue: JobQueue, registry: Registry, policy: Policy,
                 gates: Gates) -> None:
        self.store, self.queue, self.registry = store, queue, registry
        self.policy, self.gates = policy, gates

    # --- the job -----------------------------------------------------------------------

    def handle(self, job: Job) -> None:
        try:
            self._handle(job)
        finally:
            if self.gates.release is not None:
                self.gates.release()

    def _handle(self, job: Job) -> None:
        req = self._get(job.payload["request_id"])
        if req["state"] in states.TERMINAL:
            self._report_terminal(req)
            return
        if job.payload.get("step") == "promote":
            self._promote(req, job.payload["decided_by"], job.payload.get("champion"))
            return
        if req["state"] == states.AWAITING_APPROVAL:
            return
        if self._blocked_by_other(req):
            raise Deferred(f"model {req['model']} has a request awaiting approval")
        cfg = self.policy.for_model(req["model"])
        if req["target"] == "Archived":
            self._archive(req, cfg)
            return
        if req["state"] == states.QUEUED:
            if not self.registry.version_exists(req["model"], req["version"]):
                self._end(req, states.QUEUED, states.FAILED, "worker",
                          f"model {req['model']!r} version {req['version']} does not exist "
                          "in the registry", None)
                return
            if not self._move(req, states.QUEUED, states.CHECKING, "worker"):
                return
        try:
            results = self.gates.check(f"models:/{req['model']}/{req['version']}")
        except Exception as exc:
            if getattr(exc, "transient", True):
                raise  # MLflow unreachable and the like: the job retries
            self._end(req, states.CHECKING, states.FAILED, "worker", str(exc), None)
            return
        failed = [r.name for r in results if not r.passed]
        tags = {f"podium.check.{r.name}": "pass" if r.passed else "fail" for r in results}
        tags["podium.checks"] = f"{len(results) - len(failed)}/{len(results)} passed"
        self.registry.set_tags(req["model"], req["version"], tags)
        with self.store.tx() as conn:
            reqs.summarise(conn, req["id"], checks=tags["podium.checks"])
        report = {"request": req["id"], "checks": [r.as_json() for r in results]}
        if failed:
            self._end(req, states.CHECKING, states.REJECTED, "policy",
                      f"failed checks: {', '.join(failed)}", report)
            return
        if req["target"] == "Staging":
            self.registry.set_alias(req["model"], cfg["aliases"]["staging"], req["version"])
            if cfg["stages"]:
                self.registry.transition_stage(req["model"], req["version"], "Staging")
            self._end(req, states.CHECKING, states.STAGED, "policy", None, report)
            return
        if not self._move(req, states.CHECKING, states.COMPARING, "worker"):
            return
        champion = self.registry.alias_version(req["model"], cfg["aliases"]["champion"])
        if champion is not None and champion != req["version"]:
            comparison = self.gates.compare(req["model"], req["version"], champion)
            report["comparison"] = comparison.as_json()
            self.registry.set_tags(req["model"], req["version"],
                                   {"podium.comparison": comparison.line()[:500]})
            with self.store.tx() as conn:
                reqs.summarise(conn, req["id"], comparison=comparison.line()[:500],
                               compared_with=champion)
            if not comparison.wins:
                self._end(req, states.COMPARING, states.REJECTED, "policy",
                          "loses the comparison: " + "; ".join(comparison.reasons), report)
                return
        self._save_report(req, report)
        if "Production" in cfg["approval"]["targets"]:
            self._move(req, states.COMPARING, states.AWAITING_APPROVAL, "policy",
                       f"waiting for {cfg['approval']['quorum']} approval(s)")
            return
        self._promote(req, "policy", champion)

    # --- decisions ---------------------------------------------------------------------

    def may_decide(self, model: str, actor: str, groups: frozenset[str] = frozenset()) -> bool:
        """Listed approvers decide: ``cli:<user>``, ``slack:<id>`` or a bare Slack user id.
        ``groups`` holds members of the policy's Slack user group (looked up by the caller).
        With no approvers and no group configured, anyone who can reach Podium decides."""
        approval = self.policy.for_model(model)["approval"]
        approvers = set(approval["approvers"])
        if not approvers and not approval.get("slack_usergroup"):
            return True
        slack_id = actor[6:] if actor.startswith("slack:") else None
        return actor in approvers or (slack_id is not None and (
            slack_id in approvers or slack_id in groups))

    def decide(self, request_id: int, actor: str, approve: bool, note: str | None = None, *,
               detail: dict | None = None, groups: frozenset[str] = frozenset()) -> dict:
        """Approve or reject a request waiting for approval (CLI, API, Slack)."""
        req = self._get(request_id)
        cfg = self.policy.for_model(req["model"])
        if not self.may_decide(req["model"], actor, groups):
            with self.store.tx() as conn:
                conn.execute(insert(audit).values(
                    at=utcnow(), actor=actor, action="denied", subject=f"request:{request_id}",
                    detail=json.dumps({"approve": approve, **(detail or {})})))
            raise NotAllowed(f"{actor} is not an approver of {req['model']}")
        if req["state"] != states.AWAITING_APPROVAL or req["decided_by"]:
            raise DecisionConflict(self._decided_line(req))
        quorum = cfg["approval"]["quorum"]
        with self.store.tx() as conn:
            subject = f"request:{request_id}"
            approvals = {r.actor: r.at for r in conn.execute(
                select(audit.c.actor, audit.c.at).where(audit.c.subject == subject,
                                                        audit.c.action == "approve"))}
            if approve and actor in approvals:
                raise DecisionConflict(
                    f"{actor} already approved request {request_id} at "
                    f"{approvals[actor]:%Y-%m-%d %H:%M:%S} UTC; waiting for "
                    f"{quorum - len(approvals)} more approval(s)")
            conn.execute(insert(audit).values(at=utcnow(), actor=actor,
                                              action="approve" if approve else "reject",
                                              subject=subject,
                                              detail=json.dumps({"note": note,
                                                                 **(detail or {})})))
            if approve:
                approvals[actor] = utcnow()
                if len(approvals) < quorum:
                    reqs.note(conn, request_id, actor,
                              f"approved by {who(actor)} ({len(approvals)} of {quorum})",
                              notify=True)
                    return {"request": request_id, "state": states.AWAITING_APPROVAL,
                            "approvals": sorted(approvals)}
            # The decision itself is a compare-and-set: the first decider wins.
            claimed = conn.execute(requests.update().where(
                requests.c.id == request_id, requests.c.state == states.AWAITING_APPROVAL,
                requests.c.decided_by.is_(None)).values(decided_by=actor)).rowcount
            if not claimed:
                raise DecisionConflict(self._decided_line(reqs.get(conn, request_id)))
            if not approve:
                reqs.transition(conn, request_id, expect=(states.AWAITING_APPROVAL,),
                                to=states.REJECTED, actor=actor,
                                reason=f"rejected by {actor}" + (f": {note}" if note else ""))
                self.queue.enqueue(conn, kind="request", key=f"request:{request_id}:rejected",
                                   payload={"request_id": request_id},
                                   lock_key=f"model:{req['model']}")
                return {"request": request_id, "state": states.REJECTED, "decided_by": actor}
            reqs.note(conn, request_id, actor, f"approved by {who(actor)}; promoting",
                      notify=True)
            self.queue.enqueue(conn, kind="request", key=f"request:{request_id}:promote",
                               payload={"request_id": request_id, "step": "promote",
                                        "decided_by": actor,
                                        "champion": req["compared_with"]},
                               lock_key=f"model:{req['model']}")
        return {"request": request_id, "state": "approved", "decided_by": actor}

    def _decided_line(self, req: dict) -> str:
        """Who decided a request and when, for the one who clicked too late."""
        if req["decided_by"]:
            return (f"request {req['id']} was already decided by {req['decided_by']} at "
                    f"{req['updated_at']:%Y-%m-%d %H:%M:%S} UTC ({req['state']})")
        return (f"request {req['id']} is {req['state']}, not waiting for approval"
                + (f" ({req['reason']})" if req["reason"] else ""))

    def expire_approvals(self, now=None) -> list[int]:
        """End requests that waited for approval longer than the policy allows."""
        from datetime import timedelta

        now = now or utcnow()
        expired = []
        with self.store.read() as conn:
            waiting = reqs.list_(conn, state=states.AWAITING_APPROVAL, limit=1000)
        for req in waiting:
            hours = self.policy.for_model(req["model"])["approval"]["expiry_hours"]
            if req["decided_by"] or req["updated_at"] > now - timedelta(hours=hours):
                continue
            with self.store.tx() as conn:
                if reqs.transition(conn, req["id"], expect=(states.AWAITING_APPROVAL,),
                                   to=states.REJECTED, actor="policy",
                                   reason=f"approval expired after {hours:g} h"):
                    self.queue.enqueue(conn, kind="request",
                                       key=f"request:{req['id']}:expired",
                                       payload={"request_id": req["id"]},
                                       lock_key=f"model:{req['model']}")
                    expired.append(req["id"])
        return expired

    def rollback(self, model: str, actor: str, to: str | None = None) -> dict:
        """Move the champion back along the ledger (or to ``to``), compare-and-set."""
        alias = self.policy.for_model(model)["aliases"]["champion"]
        current = self.registry.alias_version(model, alias)
        with self.store.read() as conn:
            target = to or ledger_repo.rollback_target(conn, model, current)
        if target is None:
            raise DecisionConflict(f"no earlier champion of {model} in the ledger")
        if target == current:
            raise DecisionConflict(f"v{target} is already the champion of {model}")
        if not self.registry.version_exists(model, target):
            raise PermanentJobError(f"{model} v{target} does not exist")
        if self.registry.alias_version(model, alias) != current:
            raise DecisionConflict("the champion moved meanwhile; try again")
        self.registry.set_alias(model, alias, target)
        with self.store.tx() as conn:
            ledger_repo.record(conn, model=model, alias=alias, from_version=current,
                               to_version=target, kind="rollback", actor=actor)
            conn.execute(insert(audit).values(at=utcnow(), actor=actor, action="rollback",
                                              subject=model, detail=json.dumps(
                                                  {"from": current, "to": target})))
            outbox.emit(conn, key=f"rollback:{model}:{uuid.uuid4().hex}", kind="message",
                        payload={"text": f":rewind: {model}: champion rolled back from "
                                         f"v{current} to v{target} by {who(actor)}"})
        tags = {TAG_STATUS: "promoted", TAG_DECIDED_BY: actor}
        self.registry.set_tags(model, target, tags)
        if current:
            self.registry.set_tags(model, current, {TAG_STATUS: "archived"})
        return {"model": model, "from": current, "to": target}

    # --- steps -------------------------------------------------------------------------

    def _promote(self, req: dict, decided_by: str, expected: str | None) -> None:
        cfg = self.policy.for_model(req["model"])
        alias = cfg["aliases"]["champion"]
        for _ in range(MAX_RECOMPARE):
            current = self.registry.alias_version(req["model"], alias)
            if current == expected or current == req["version"]:
                break
            # The champion moved since the comparison: never promote on a stale one.
            comparison = self.gates.compare(req["model"], req["version"], current)
            self.registry.set_tags(req["model"], req["version"],
                                   {"podium.comparison": comparison.line()[:500]})
            self._note(req, f"champion moved to v{current}: compared again")
            if not comparison.wins:
                self._end(req, req["state"], states.REJECTED, decided_by,
                          f"loses the comparison with the new champion v{current}: "
                          + "; ".join(comparison.reasons), None)
                return
            expected = current
        else:
            raise RuntimeError("the champion kept moving; will retry")
        self.registry.set_alias(req["model"], alias, req["version"])
        if cfg["stages"]:
            self.registry.transition_stage(req["model"], req["version"], "Production")
        if expected and expected != req["version"]:
            self.registry.set_tags(req["model"], expected, {TAG_STATUS: "archived"})
            if cfg["stages"]:
                self.registry.transition_stage(req["model"], expected, "Archived")
        with self.store.tx() as conn:
            ledger_repo.record(conn, model=req["model"], alias=alias, from_version=expected,
                               to_version=req["version"], kind="promote", actor=decided_by,
                               request_id=req["id"])
        self._end(req, req["state"], states.PROMOTED, decided_by,
                  f"champion v{expected} -> v{req['version']}" if expected
                  else "first champion", None)

    def _archive(self, req: dict, cfg: dict) -> None:
        champion = self.registry.alias_version(req["model"], cfg["aliases"]["champion"])
        if champion == req["version"]:
            self._end(req, req["state"], states.REJECTED, "policy",
                      f"v{req['version']} is the champion: promote a replacement or roll "
                      "back first", None)
            return
        if cfg["stages"]:
            self.registry.transition_stage(req["model"], req["version"], "Archived")
        self._end(req, req["state"], states.ARCHIVED, "policy", None, None)

    def _end(self, req: dict, expect: str, to: str, actor: str, reason: str | None,
             report: dict | None) -> None:
        with self.store.tx() as conn:
            if not reqs.transition(conn, req["id"], expect=(expect,), to=to, actor=actor,
                                   reason=reason):
                return
            conn.execute(requests.update().where(requests.c.id == req["id"])
                         .values(decided_by=actor))
        if report is not None:
            self._save_report(req, {**report, "state": to, "reason": reason})
        self._report_terminal(self._get(req["id"]))

    def _report_terminal(self, req: dict) -> None:
        tags = {TAG_REQUEST_ID: str(req["id"])}
        if req["reason"]:
            tags["podium.reason"] = req["reason"][:500]
        if req["decided_by"]:
            tags[TAG_DECIDED_BY] = req["decided_by"]
        tags[TAG_STATUS] = req["state"]
        self.registry.set_tags(req["model"], req["version"], tags)

    def _move(self, req: dict, expect: str, to: str, actor: str,
              reason: str | None = None) -> bool:
        with self.store.tx() as conn:
            moved = reqs.transition(conn, req["id"], expect=(expect,), to=to, actor=actor,
                                    reason=reason)
        if moved:
            req["state"] = to
            self.registry.set_tags(req["model"], req["version"],
                                   {TAG_REQUEST_ID: str(req["id"]), TAG_STATUS: to})
        return moved

    def _save_report(self, req: dict, report: dict) -> None:
        lines = [f"# Podium request {req['id']}: {req['model']} v{req['version']} -> "
                 f"{req['target']}", ""]
        if report.get("state"):
            lines += [f"**{report['state']}**" + (f": {report['reason']}"
                                                   if report.get("reason") else ""), ""]
        lines += ["| check | category | result | value | threshold | reason |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {c['name']} | {c['category']} | {'pass' if c['passed'] else 'FAIL'} | "
                  f"{c['value']} | {c['threshold']} | {c['reason']} |"
                  for c in report.get("checks", [])]
        if "comparison" in report:
            c = report["comparison"]
            lines += ["", f"Comparison on {c['rows']} holdout rows: {c['metric']} "
                          f"{c['challenger']['metric']:.4f} vs {c['champion']['metric']:.4f}, "
                          f"delta {c['delta']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"]
        try:
            self.registry.log_report(req["model"], req["version"], f"request-{req['id']}",
                                     report, "\n".join(lines) + "\n")
        except Exception:  # the report is a courtesy; never lose the decision over it
            log.exception("could not log the report of request %s", req["id"])

    def _blocked_by_other(self, req: dict) -> bool:
        with self.store.read() as conn:
            return any(r["id"] < req["id"] and r["state"] == states.AWAITING_APPROVAL
                       for r in reqs.list_(conn, model=req["model"],
                                           state=states.AWAITING_APPROVAL))

    def _note(self, req: dict, text: str) -> None:
        with self.store.tx() as conn:
            reqs.note(conn, req["id"], "worker", text)

    def _get(self, request_id: int) -> dict:
        with self.store.read() as conn:
            req = reqs.get(conn, request_id)
        if req is None:
            raise PermanentJobError(f"request {request_id} does not exist")
        return req
