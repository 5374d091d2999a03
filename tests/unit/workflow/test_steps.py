"""Workflow steps against an in-memory registry (the real-MLflow runs are integration tests):
compare-and-set promotion, one decision per model, archive refusal."""

from dataclasses import replace

import pytest

from podium_policy.policy import parse_policy
from tests.support.registry import MemoryRegistry, comparison, passing
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import Job
from webhook_server.store import ledger
from webhook_server.store import transition_requests as reqs
from webhook_server.workflow import Deferred, GateFailed, Gates, Workflow


def make(svc, registry, gates, policy=None):
    svc.policy = parse_policy(policy or {})
    return Workflow(svc.store, svc.queue, registry, svc.policy, gates)


def submit(svc, version, target="Production", key=None):
    return svc.intake.record(Delivery("api", key or f"d-{version}-{target}", "api.request",
                                      "{}", TransitionRequested("churn", version, target,
                                                                "api"))).request_id


def run(workflow, request_id):
    workflow.handle(Job(1, f"request:{request_id}", "request", {"request_id": request_id}, 1,
                        6, "w"))


def state(svc, request_id):
    with svc.store.read() as conn:
        return reqs.get(conn, request_id)


def test_the_champion_moving_during_the_comparison_triggers_a_new_comparison(svc):
    registry = MemoryRegistry({"champion": "1"})
    compared = []

    def compare(model, challenger, champion):
        compared.append(champion)
        if len(compared) == 1:
            registry.aliases["champion"] = "2"  # someone promoted v2 meanwhile
        return comparison(challenger, champion)

    rid = submit(svc, "3")
    run(make(svc, registry, Gates(passing, compare)), rid)
    assert compared == ["1", "2"]
    assert registry.aliases["champion"] == "3" and state(svc, rid).state == "promoted"
    with svc.store.read() as conn:
        entries = ledger.entries(conn, "churn")
        everything = ledger.entries(conn, "churn", include_unapplied=True)
    # the move to v2 happened outside Podium: recorded as such, then the promotion 2 -> 3
    assert [(e["kind"], e["from_version"], e["to_version"]) for e in entries] == [
        ("external", None, "2"), ("promote", "2", "3")]
    assert [(e["state"], e["from_version"]) for e in everything if e["kind"] == "promote"] == [
        ("abandoned", "1"), ("applied", "2")]
    assert registry.tags["2"]["podium.status"] == "archived"


def test_a_new_champion_that_wins_the_second_comparison_keeps_its_place(svc):
    registry = MemoryRegistry({"champion": "1"})
    calls = []

    def compare(model, challenger, champion):
        calls.append(champion)
        if len(calls) == 1:
            registry.aliases["champion"] = "2"
            return comparison(challenger, champion)
        return comparison(challenger, champion, wins=False)

    rid = submit(svc, "3")
    run(make(svc, registry, Gates(passing, compare)), rid)
    assert registry.aliases["champion"] == "2"
    row = state(svc, rid)
    assert row.state == "rejected" and "new champion v2" in row.reason


def test_a_second_request_waits_while_the_first_awaits_approval(svc):
    registry = MemoryRegistry({"champion": "1"})
    policy = {"people": {"ana": {"cli": "ana"}},
              "default": {"approval": {"targets": ["Production"], "approvers": ["ana"]}}}
    workflow = make(svc, registry, Gates(passing, lambda m, c, k: comparison(c, k)), policy)
    first, second = submit(svc, "3"), submit(svc, "4")
    run(workflow, first)
    assert state(svc, first).state == "awaiting_approval"
    with pytest.raises(Deferred, match="awaiting approval"):
        run(workflow, second)
    assert state(svc, second).state == "queued"
    assert registry.aliases["champion"] == "1"


def test_an_approval_given_the_moment_the_request_waits_is_carried_out_by_its_own_job(svc):
    """An approver reacts to ``podium.status=awaiting_approval`` in MLflow and clicks before
    the job that wrote it has returned: the request job stops at the hand-over, and the job
    the decision queued makes the move (its trace is the click's)."""
    policy = {"people": {"ana": {"cli": "ana"}},
              "default": {"approval": {"targets": ["Production"], "approvers": ["ana"]}}}
    clicked = []

    class Watched(MemoryRegistry):
        def set_tags(self, model, version, tags):
            super().set_tags(model, version, tags)
            if tags.get("podium.status") == "awaiting_approval":
                clicked.append(workflow.decide(rid, "cli:ana", True)["state"])

    registry = Watched({"champion": "1"})
    workflow = make(svc, registry, Gates(passing, lambda m, c, k: comparison(c, k)), policy)
    rid = submit(svc, "3")
    run(workflow, rid)
    assert clicked == ["approved"]
    assert state(svc, rid).state == "promoting" and registry.aliases["champion"] == "1"
    from webhook_server.jobs.queue import list_jobs

    with svc.store.read() as conn:
        promote = next(j for j in list_jobs(conn) if j["key"].startswith(f"request:{rid}:"))
    workflow.handle(Job(2, promote["key"], "request", {"request_id": rid}, 1, 6, "w"))
    assert state(svc, rid).state == "promoted" and registry.aliases["champion"] == "3"


def test_the_first_champion_needs_no_comparison(svc):
    registry = MemoryRegistry()

    def never(*args):
        raise AssertionError("nothing to compare with")

    rid = submit(svc, "1")
    run(make(svc, registry, Gates(passing, never)), rid)
    assert registry.aliases["champion"] == "1"
    assert (state(svc, rid).state, state(svc, rid).reason) == ("promoted",
                                                               "first champion")


def test_staging_sets_the_staging_alias_and_stages_when_enabled(svc):
    registry = MemoryRegistry({"champion": "1"})
    rid = submit(svc, "2", "Staging")
    run(make(svc, registry, Gates(passing, None), {"default": {"stages": True}}), rid)
    assert registry.aliases == {"champion": "1", "staging": "2"}
    assert registry.tags["2"]["stage"] == "Staging" and state(svc, rid).state == "staged"


def test_archiving_the_champion_is_refused_with_the_reason(svc):
    registry = MemoryRegistry({"champion": "1"})
    rid = submit(svc, "1", "Archived")
    run(make(svc, registry, Gates(passing, None)), rid)
    row = state(svc, rid)
    assert row.state == "rejected" and "is the champion" in row.reason
    other = submit(svc, "2", "Archived")
    run(make(svc, registry, Gates(passing, None)), other)
    assert state(svc, other).state == "archived"


def test_a_cancelled_request_is_not_checked(svc):
    registry = MemoryRegistry({"champion": "1"})
    rid = submit(svc, "3")
    with svc.store.tx() as conn:
        reqs.transition(conn, rid, expect=("queued",), to="cancelled", actor="intake")

    def never(model_uri):
        raise AssertionError("cancelled requests are not checked")

    run(make(svc, registry, Gates(never, None)), rid)
    assert registry.tags["3"]["podium.status"] == "cancelled"


def test_a_comparison_that_cannot_run_ends_the_request_failed_with_the_reason(svc):
    """The champion could not be scored (its sandbox died twice): a verdict, not a retry
    loop; the champion stays."""
    registry = MemoryRegistry({"champion": "1"})

    def compare(model, challenger, champion):
        raise GateFailed("the champion v1 could not be scored: the sandbox died twice")

    rid = submit(svc, "2")
    run(make(svc, registry, Gates(passing, compare)), rid)
    assert (state(svc, rid).state, state(svc, rid).reason) == (
        "failed", "the champion v1 could not be scored: the sandbox died twice")
    assert registry.aliases["champion"] == "1"


def test_the_holdout_digest_is_part_of_what_an_approval_approves(svc):
    """Evidence records the judge's data; an approval binds to it."""
    from webhook_server.workflow.decisions import evidence_of

    def checked(model_uri):
        return replace(passing(model_uri),
                       holdout={"uri": "/data/judge.csv", "sha256": "ab" * 32, "rows": 900})

    registry = MemoryRegistry({"champion": "1"})
    policy = {"people": {"ana": {"cli": "ana"}},
              "default": {"approval": {"targets": ["Production"], "approvers": ["ana"]}}}
    rid = submit(svc, "2")
    run(make(svc, registry, Gates(checked, lambda m, c, k: comparison(c, k)), policy), rid)
    req = state(svc, rid)
    assert req.state == "awaiting_approval"
    assert evidence_of(req)["holdout_sha256"] == "ab" * 32


def _inconclusive(model, challenger, champion):
    return replace(comparison(challenger, champion, wins=False), outcome="inconclusive",
                   reasons=["holdout too small: can detect only +0.034 at 80% power "
                            "(max_detectable_improvement 0.02)"])


def test_an_inconclusive_comparison_waits_for_a_person_when_the_policy_says_so(svc):
    registry = MemoryRegistry({"champion": "1"})
    policy = {"people": {"ana": {"cli": "ana"}},
              "default": {"comparison": {"inconclusive": "approval"},
                          "approval": {"approvers": ["ana"]}}}
    rid = submit(svc, "2")
    run(make(svc, registry, Gates(passing, _inconclusive), policy), rid)
    req = state(svc, rid)
    assert req.state == "awaiting_approval"
    assert req.reason == ("inconclusive comparison with the champion v1: holdout too "
                          "small: can detect only +0.034 at 80% power "
                          "(max_detectable_improvement 0.02); waiting for 1 approval(s)")
    assert registry.aliases["champion"] == "1"


def test_an_inconclusive_comparison_is_rejected_by_default(svc):
    registry = MemoryRegistry({"champion": "1"})
    rid = submit(svc, "2")
    run(make(svc, registry, Gates(passing, _inconclusive)), rid)
    req = state(svc, rid)
    assert req.state == "rejected"
    assert req.reason.startswith("inconclusive comparison with the champion v1: holdout "
                                 "too small")
    assert registry.aliases["champion"] == "1"
