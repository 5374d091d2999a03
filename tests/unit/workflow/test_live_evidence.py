"""Promotion on live evidence (policy ``comparison.live``): a request that passes the holdout
waits in ``shadowing`` with its version on the shadow alias; looks queued by the scheduler
(``Workflow.check_shadowing``) compare it with the ledger's champion on the labelled outcomes
both predicted (the real ``monitoring.live`` on the store's labels) and decide: promoted
(through approval, as after a holdout comparison), rejected, or inconclusive at ``max_days``.
The fault sweeps fail every MLflow call of a live promotion and of a live rejection, before
and after its effect: the champion alias = the ledger = the tags, the version leaves the
shadow alias, one decision."""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from model_tests.simulation import pair
from podium_policy.policy import parse_policy
from tests.support.registry import (
    Faults,
    FaultyRegistry,
    MemoryRegistry,
    comparison,
    fake_bundle,
    passing,
)
from webhook_server.adapters import gitlab
from webhook_server.adapters.notify import blocks
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import SqlJobQueue
from webhook_server.jobs.worker import Worker
from webhook_server.monitoring.live import live_comparison
from webhook_server.store import audit, ledger, states
from webhook_server.store import monitoring as rows
from webhook_server.store import transition_requests as reqs
from webhook_server.workflow import Gates, Workflow


def policy(approval: bool = True, max_days: float = 30) -> dict:
    default = {"shadow": {"aliases": ["challenger"]},
               "comparison": {"live": {"min_pairs": 400, "max_days": max_days}}}
    if approval:
        default["approval"] = {"targets": ["Production"], "approvers": ["cli:ana"]}
    return {"default": default}


class LiveRig:
    """One model, champion v1 (through Podium), an in-memory registry whose N-th call
    fails once, and the live gate reading the store's labels."""

    def __init__(self, svc, model: str, faults: Faults, **kw) -> None:
        self.svc, self.model, self.faults = svc, model, faults
        self.memory = MemoryRegistry({"champion": "1"})
        self.memory.tags["1"] = {"podium.status": "promoted"}
        gates = Gates(check=faults.wrap("check", passing),
                      compare=faults.wrap("compare", lambda m, c, k: comparison(c, k)),
                      bundle=faults.wrap("bundle", fake_bundle),
                      live=functools.partial(live_comparison, svc.store))
        self.queue = SqlJobQueue(svc.store, backoff_s=0, max_attempts=10)
        self.workflow = Workflow(svc.store, self.queue, FaultyRegistry(self.memory, faults),
                                 parse_policy(policy(**kw)), gates)
        self.queue.on_dead("request", self.workflow.on_dead)
        self.worker = Worker(self.queue, {"request": self.workflow.handle}, poll_s=0)
        self.looks = itertools.count(1)
        self.batches = itertools.count(1)
        with svc.store.tx() as conn:
            ledger.record(conn, model=model, alias="champion", from_version=None,
                          to_version="1", kind=ledger.PROMOTE, actor="policy")

    def submit(self, version: str, delivery: str = "") -> int:
        self.memory.ask(version)
        event = TransitionRequested(self.model, version, "Production", "tag")
        return self.svc.intake.record(Delivery("mlflow", f"{self.model}-{version}{delivery}",
                                               "model_version_tag.set", "{}",
                                               event)).request_id

    def labels(self, version: str, n: int, delta: float, seed: int,
               at: datetime | None = None) -> None:
        """A batch of ``n`` outcomes both the champion v1 and ``version`` predicted (scored
        ``at``, by default now: after the request entered shadowing)."""
        at = at or datetime.now(UTC)
        y, s, c = pair(n, 0.80, delta, 0.8, np.random.default_rng(seed))
        b = next(self.batches)
        with self.svc.store.tx() as conn:
            for v, scores in (("1", c), (version, s)):  # the shadow's batch: the champion's
                batch = f"{self.model}-b{b}" + (f"-v{v}" if v != "1" else "")  # + -v<version>
                rows.record_batch(conn, {"batch_id": batch, "model": self.model,
                                         "version": v, "scored_at": at, "rows": n,
                                         "mean_score": 0.3, "flagged": 1, "threshold": 0.5,
                                         "deciles": None, "histogram": [0] * 10, "path": "x",
                                         "role": "champion" if v == "1" else "shadow"})
                rows.add_labels(conn, [{"model": self.model, "version": v, "batch_id": batch,
                                        "customer_id": f"b{b}c{i}", "churn": int(y[i]),
                                        "score": float(scores[i]), "scored_at": at,
                                        "observed_at": at, "outcome": ""}
                                       for i in range(n)])

    def drive(self, request_id: int, *, until: tuple[str, ...] = states.TERMINAL,
              approve: bool = True):
        """Run jobs (a look queued whenever the request waits in shadowing) until the
        request is in ``until``; approve it (as cli:ana) when it waits for a person."""
        for _ in range(300):
            if self.worker.run_once() is not None:
                continue
            req = self.get(request_id)
            if req.state in until:
                return req
            if req.state == states.AWAITING_APPROVAL and approve:
                self.workflow.decide(request_id, "cli:ana", True)
            elif req.state == states.SHADOWING:
                self.workflow.check_shadowing(60, now=60.0 * next(self.looks))
            else:
                raise AssertionError(f"no job to run and request {request_id} is {req.state}")
        raise AssertionError("the request never settled")

    def get(self, request_id: int):
        with self.svc.store.read() as conn:
            return reqs.get(conn, request_id)

    def history(self, request_id: int) -> list[str]:
        with self.svc.store.read() as conn:
            return [e.to_state for e in reqs.history(conn, request_id)
                    if e.from_state != e.to_state]

    def champion_moves(self) -> list[tuple]:
        with self.svc.store.read() as conn:
            applied = ledger.entries(conn, self.model, alias="champion")
            everything = ledger.entries(conn, self.model, include_unapplied=True)
        assert [e for e in everything if e["state"] == ledger.INTENT] == []
        return [(e["from_version"], e["to_version"]) for e in applied]


def live_promotion(rig: LiveRig) -> None:
    rid = rig.submit("2")
    req = rig.drive(rid, until=(states.SHADOWING,))
    assert rig.memory.aliases["challenger"] == "2", rig.faults.fired
    assert rig.memory.aliases["champion"] == "1"
    rig.labels("2", 150, 0.10, seed=1)  # too few pairs: the look keeps waiting
    rig.workflow.check_shadowing(60, now=0.0)
    while rig.worker.run_once() is not None:
        pass
    req = rig.get(rid)
    assert req.state == states.SHADOWING, rig.faults.fired
    assert req.evidence_json()["live"]["decision"] is None
    rig.labels("2", 1500, 0.10, seed=2)
    req = rig.drive(rid)
    assert (req.state, req.decided_by) == ("promoted", "cli:ana"), (rig.faults.fired,
                                                                     req.reason)
    assert rig.memory.aliases["champion"] == "2" and "challenger" not in rig.memory.aliases
    assert rig.champion_moves() == [(None, "1"), ("1", "2")]
    assert [m for m in rig.memory.moves if m[0] == "champion"] == [("champion", "1", "2")]
    assert rig.memory.tags["2"]["podium.status"] == "promoted"
    assert rig.memory.tags["1"]["podium.status"] == "archived"
    assert rig.history(rid).count(states.SHADOWING) == 1
    assert rig.history(rid).count(states.PROMOTED) == 1
    live = req.evidence_json()["live"]
    assert live["decision"] == "promote" and live["pairs"] >= 400
    assert live["verdict"] == "better" and live["champion_version"] == "1"
    with rig.svc.store.read() as conn:
        approvals = audit.approvals(conn, f"request:{rid}")
    assert list(approvals) == ["cli:ana"]
    # the approval approved the live figures too
    assert approvals and "live" in req.approval_evidence()


def live_rejection(rig: LiveRig) -> None:
    rid = rig.submit("2")
    rig.drive(rid, until=(states.SHADOWING,))
    rig.labels("2", 1500, -0.10, seed=3)
    req = rig.drive(rid)
    assert (req.state, req.decided_by) == ("rejected", "policy"), (rig.faults.fired,
                                                                    req.reason)
    assert req.reason.startswith("not better than the champion on live outcomes: ")
    assert rig.memory.aliases["champion"] == "1" and "challenger" not in rig.memory.aliases
    assert rig.champion_moves() == [(None, "1")]
    assert rig.memory.tags["2"]["podium.status"] == "rejected"
    assert rig.memory.tags["1"]["podium.status"] == "promoted"
    assert rig.history(rid).count(states.REJECTED) == 1


def test_a_better_version_is_promoted_on_live_outcomes_through_approval(svc):
    rig = LiveRig(svc, "churn-live", Faults())
    live_promotion(rig)
    req = rig.get(1)
    text, shown = blocks.parent(req)
    assert any("*Live evidence*" in (b.get("text") or {}).get("text", "") for b in shown)
    note = gitlab.note_body(req)
    assert "| live evidence | " in note and "labelled pairs" in note


def test_a_worse_version_is_rejected_on_live_outcomes(svc):
    live_rejection(LiveRig(svc, "churn-live-no", Faults()))


def test_without_approval_a_live_pass_promotes_at_once(svc):
    rig = LiveRig(svc, "churn-live-auto", Faults(), approval=False)
    rid = rig.submit("2")
    rig.drive(rid, until=(states.SHADOWING,))
    rig.labels("2", 1500, 0.10, seed=4)
    req = rig.drive(rid)
    assert (req.state, req.decided_by) == ("promoted", "policy")
    assert rig.memory.aliases["champion"] == "2" and "challenger" not in rig.memory.aliases


def test_an_undecided_version_ends_inconclusive_at_max_days(svc):
    rig = LiveRig(svc, "churn-live-wait", Faults(), max_days=2)
    rid = rig.submit("2")
    rig.drive(rid, until=(states.SHADOWING,))
    rig.labels("2", 100, 0.0, seed=5)  # too few pairs to decide anything
    rig.workflow.clock = lambda: datetime.now(UTC) + timedelta(days=1)
    rig.workflow.check_shadowing(60, now=0.0)
    while rig.worker.run_once() is not None:
        pass
    assert rig.get(rid).state == states.SHADOWING  # a day in: still waiting
    rig.workflow.clock = lambda: datetime.now(UTC) + timedelta(days=2, minutes=1)
    req = rig.drive(rid)
    assert (req.state, req.decided_by) == (states.INCONCLUSIVE, "policy")
    assert req.reason.startswith("no live decision within 2 days (max_days): ")
    assert "challenger" not in rig.memory.aliases and rig.memory.aliases["champion"] == "1"
    assert rig.memory.tags["2"]["podium.status"] == states.INCONCLUSIVE
    assert rig.champion_moves() == [(None, "1")]


def test_a_request_is_judged_only_on_outcomes_predicted_since_it_entered_shadowing(svc):
    """A version rejected on live outcomes and asked for again starts from no pairs: the
    earlier request's pairs (and predictions logged before this request entered shadowing)
    are not this request's evidence; counting them would decide it at its first look."""
    rig = LiveRig(svc, "churn-live-again", Faults(), approval=False)
    rig.labels("2", 1500, 0.10, seed=6, at=datetime.now(UTC) - timedelta(days=1))  # before
    first = rig.submit("2")
    rig.drive(first, until=(states.SHADOWING,))
    rig.labels("2", 1500, -0.10, seed=7)
    assert rig.drive(first).state == states.REJECTED
    again = rig.submit("2", delivery="-again")
    assert again != first
    rig.drive(again, until=(states.SHADOWING,))
    rig.workflow.check_shadowing(60, now=0.0)
    while rig.worker.run_once() is not None:
        pass
    req = rig.get(again)
    assert req.state == states.SHADOWING  # not rejected again on the first request's pairs
    assert req.evidence_json()["live"]["pairs"] == 0
    rig.labels("2", 1500, 0.10, seed=8)
    req = rig.drive(again)
    assert (req.state, req.evidence_json()["live"]["pairs"]) == (states.PROMOTED, 1500)


def test_predictions_not_scored_beside_the_champion_are_no_live_evidence(svc):
    """Someone who may score runs the waiting version on its own (``podium score
    --model-uri models:/M/2``: logged with role champion, on an input of their choosing,
    after the champion's run): its outcomes are no pair with the champion's predictions of
    another run, so they promote nothing."""
    rig = LiveRig(svc, "churn-live-solo", Faults(), approval=False)
    rid = rig.submit("2")
    rig.drive(rid, until=(states.SHADOWING,))
    at = datetime.now(UTC)
    y, _, c = pair(1500, 0.80, 0.0, 0.8, np.random.default_rng(9))
    with svc.store.tx() as conn:
        for v, batch, scores in (("1", "churn-run", c), ("2", "churn-solo", 0.9 * y + 0.05)):
            rows.record_batch(conn, {"batch_id": batch, "model": rig.model, "version": v,
                                     "scored_at": at, "rows": 1500, "mean_score": 0.3,
                                     "flagged": 1, "threshold": 0.5, "deciles": None,
                                     "histogram": [0] * 10, "path": "x", "role": "champion"})
            rows.add_labels(conn, [{"model": rig.model, "version": v, "batch_id": batch,
                                    "customer_id": f"c{i}", "churn": int(y[i]),
                                    "score": float(scores[i]), "scored_at": at,
                                    "observed_at": at, "outcome": ""} for i in range(1500)])
    rig.workflow.check_shadowing(60, now=0.0)
    while rig.worker.run_once() is not None:
        pass
    req = rig.get(rid)
    assert req.state == states.SHADOWING and rig.memory.aliases["champion"] == "1"
    assert req.evidence_json()["live"]["pairs"] == 0


def test_a_look_is_queued_once_per_interval_and_only_for_shadowing_requests(svc):
    rig = LiveRig(svc, "churn-live-looks", Faults())
    rid = rig.submit("2")
    rig.drive(rid, until=(states.SHADOWING,))
    assert rig.workflow.check_shadowing(60, now=120.0) == [rid]
    assert rig.workflow.check_shadowing(60, now=150.0) == []  # same interval: no second job
    assert rig.workflow.check_shadowing(60, now=180.0) == [rid]


def test_moving_the_shadow_alias_by_hand_withdraws_the_request(svc):
    rig = LiveRig(svc, "churn-live-moved", Faults())
    rid = rig.submit("2")
    rig.drive(rid, until=(states.SHADOWING,))
    rig.memory.set_alias(rig.model, "challenger", "5")  # someone shadows another version
    req = rig.drive(rid)
    assert req.state == states.CANCELLED and "moved to v5 outside Podium" in req.reason
    assert rig.memory.aliases["challenger"] == "5" and rig.champion_moves() == [(None, "1")]


def test_a_champion_moved_while_shadowing_sends_the_request_back_to_comparing(svc):
    rig = LiveRig(svc, "churn-live-moved-champion", Faults())
    rid = rig.submit("2")
    rig.drive(rid, until=(states.SHADOWING,))
    rig.memory.set_alias(rig.model, "champion", "5")  # say, a rollback or another promotion
    with svc.store.tx() as conn:
        ledger.record(conn, model=rig.model, alias="champion", from_version="1",
                      to_version="5", kind=ledger.PROMOTE, actor="policy")
    rig.workflow.check_shadowing(60, now=0.0)
    while rig.worker.run_once() is not None:
        pass
    req = rig.get(rid)
    assert req.state == states.SHADOWING and req.compared_with == "5"
    assert rig.history(rid).count(states.COMPARING) == 2
    assert rig.memory.aliases["challenger"] == "2"  # still shadowed, against the new champion


def test_a_later_request_waits_while_an_earlier_one_is_shadowing(svc):
    rig = LiveRig(svc, "churn-live-queue", Faults())
    first = rig.submit("2")
    rig.drive(first, until=(states.SHADOWING,))
    second = rig.submit("3")
    while rig.worker.run_once() is not None:
        pass
    assert rig.get(second).state == states.QUEUED  # deferred: one decision per model


def test_the_shadow_alias_set_by_podium_asks_for_nothing_new(svc):
    """Putting the version on the challenger alias fires MLflow's alias webhook: the intake
    finds the request waiting in shadowing and makes no second one."""
    rig = LiveRig(svc, "churn-live-hook", Faults())
    rid = rig.submit("2")
    rig.drive(rid, until=(states.SHADOWING,))
    event = TransitionRequested(rig.model, "2", "Production", "alias")
    got = svc.intake.record(Delivery("mlflow", "alias-hook", "model_version_alias.created",
                                     "{}", event))
    assert (got.request_id, got.already_open) == (rid, True)
    assert rig.get(rid).state == states.SHADOWING


def count(svc, flow) -> int:
    faults = Faults()
    flow(LiveRig(svc, f"churn-live-count-{flow.__name__}", faults))
    return len(faults.calls)


@pytest.mark.parametrize("flow", [live_promotion, live_rejection])
@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_live_decision_survives_a_failure_of_any_mlflow_call(svc, mode, flow):
    total = count(svc, flow)
    assert total >= 8  # checks, tags, compare, shadow alias, reads, tags, alias removed...
    for n in range(1, total + 1):
        faults = Faults(fail_at=n, mode=mode)
        flow(LiveRig(svc, f"churn-{flow.__name__}-{mode}-{n}", faults))
        assert faults.fired, f"call {n} of {total} was never made"


def test_the_scheduler_looks_at_shadowing_requests_every_interval(make_svc, sqlite_url):
    from tests.support.settings import make_settings
    from webhook_server.web.serve import _scheduler

    svc = make_svc(make_settings(sqlite_url, live_check_interval_s=120),
                   registry=MemoryRegistry())
    job = _scheduler(svc).get_job("live-evidence")
    assert job.trigger.interval == timedelta(seconds=120) and job.args == (120,)
    assert job.func == svc.workflow.check_shadowing
