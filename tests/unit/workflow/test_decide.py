"""Deciding a request waiting for approval: once, by an allowed actor, with a quorum."""

import pytest

from podium_policy.policy import parse_policy
from tests.support.settings import API_TOKEN, make_settings
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.store import states
from webhook_server.store import transition_requests as reqs
from webhook_server.workflow import DecisionConflict, NotAllowed

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def wsvc(db_url, make_svc):
    # decide() only touches the store and the queue; the registry URL is never called
    svc = make_svc(make_settings(db_url, mlflow_tracking_uri="http://127.0.0.1:9"))
    return svc


PEOPLE = {"ana": {"cli": "ana"}, "bob": {"cli": "bob"}, "eve": {"cli": "eve"},
          "ops": {"api": "default"}}  # the token PODIUM_API_TOKEN is named "default"


def waiting(svc, policy=None, key="d-1"):
    """A request waiting for approval; ana and bob may decide unless ``policy`` says who."""
    policy = {"people": PEOPLE, **(policy or {})}
    approval = policy.setdefault("default", {}).setdefault("approval", {})
    approval.setdefault("approvers", ["ana", "bob"])
    approval["approvers"] = [a.removeprefix("cli:") for a in approval["approvers"]]
    svc.policy = parse_policy(policy)
    result = svc.intake.record(Delivery("api", key, "api.request", "{}",
                                        TransitionRequested(f"churn-{key}", "3", "Production",
                                                            "api")))
    with svc.store.tx() as conn:
        for a, b in ((states.QUEUED, states.CHECKING), (states.CHECKING, states.COMPARING),
                     (states.COMPARING, states.AWAITING_APPROVAL)):
            reqs.transition(conn, result.request_id, expect=(a,), to=b, actor="test")
    return result.request_id


def test_an_approval_queues_the_promotion_once(wsvc):
    rid = waiting(wsvc)
    out = wsvc.workflow.decide(rid, "cli:ana", True)
    assert out == {"request": rid, "state": "approved", "decided_by": "cli:ana"}
    decided = (r"already decided by cli:ana at \d{4}-\d\d-\d\d .* UTC "
               r"\(promoting: moving champion to v3\)")
    with pytest.raises(DecisionConflict, match=decided):
        wsvc.workflow.decide(rid, "cli:bob", False)
    from webhook_server.jobs.queue import list_jobs
    from webhook_server.store import ledger

    with wsvc.store.read() as conn:
        jobs = {j["key"]: j for j in list_jobs(conn)}
        row = reqs.get(conn, rid)
        intent = ledger.intent_for(conn, rid)
    # the decision records the move's intent before anything touches MLflow
    assert (row.state, row.decided_by) == ("promoting", "cli:ana")
    assert (intent["from_version"], intent["to_version"], intent["actor"]) == (None, "3",
                                                                             "cli:ana")
    assert [k.rsplit("-", 1)[0] for k in jobs] == [f"request:{rid}:promote", f"request:{rid}"]


def test_a_rejection_ends_the_request_and_a_later_click_conflicts(wsvc):
    rid = waiting(wsvc)
    out = wsvc.workflow.decide(rid, "cli:ana", False, note="not this week")
    assert out["state"] == "rejected"
    with wsvc.store.read() as conn:
        row = reqs.get(conn, rid)
    assert (row.reason, row.decided_by) == ("rejected by cli:ana: not this week",
                                            "cli:ana")
    late = r"already decided by cli:ana at .* \(rejected: rejected by cli:ana"
    with pytest.raises(DecisionConflict, match=late):
        wsvc.workflow.decide(rid, "cli:bob", True)


def test_only_listed_approvers_may_decide(wsvc):
    rid = waiting(wsvc, {"default": {"approval": {"approvers": ["cli:ana"]}}})
    with pytest.raises(NotAllowed, match="cli:eve is not an approver of churn"):
        wsvc.workflow.decide(rid, "cli:eve", True)


def test_a_quorum_needs_distinct_approvers(wsvc):
    rid = waiting(wsvc, {"default": {"approval": {"quorum": 2}}})
    first = wsvc.workflow.decide(rid, "cli:ana", True)
    assert first["state"] == "awaiting_approval" and first["approvals"] == ["ana"]
    with pytest.raises(DecisionConflict, match="ana already approved .* 1 more approval"):
        wsvc.workflow.decide(rid, "cli:ana", True)
    assert wsvc.workflow.decide(rid, "cli:bob", True)["state"] == "approved"


def test_a_request_not_waiting_cannot_be_decided(wsvc):
    waiting(wsvc, key="other")  # the policy: ana may decide
    result = wsvc.intake.record(Delivery("api", "d-2", "api.request", "{}",
                                         TransitionRequested("churn", "4", "Production",
                                                             "api")))
    with pytest.raises(DecisionConflict, match="is queued, not waiting for approval"):
        wsvc.workflow.decide(result.request_id, "cli:ana", True)


def test_the_api_answers_404_409_and_200(wsvc):
    from webhook_server.web.app import create_app

    client = create_app(wsvc.settings, services=wsvc).test_client()
    assert client.post("/api/v1/requests/99/approve", headers=AUTH).status_code == 404
    rid = waiting(wsvc, {"default": {"approval": {"approvers": ["ops"]}}})
    ok = client.post(f"/api/v1/requests/{rid}/approve", json={"actor": "ana"}, headers=AUTH)
    assert ok.status_code == 200 and ok.json["decided_by"] == "api:default"  # not the body
    again = client.post(f"/api/v1/requests/{rid}/reject", json={"reason": "too late"},
                        headers=AUTH)
    assert again.status_code == 409


def test_an_approval_left_waiting_past_the_expiry_ends_rejected(wsvc):
    from datetime import timedelta

    from webhook_server.store.schema import utcnow

    rid = waiting(wsvc, {"default": {"approval": {"expiry_hours": 2}}})
    workflow = wsvc.workflow
    assert workflow.expire_approvals(now=utcnow() + timedelta(hours=1)) == []
    assert workflow.expire_approvals(now=utcnow() + timedelta(hours=3)) == [rid]
    with wsvc.store.read() as conn:
        row = reqs.get(conn, rid)
    assert (row.state, row.reason) == ("rejected", "approval expired after 2 h")
    with pytest.raises(DecisionConflict):
        workflow.decide(rid, "cli:ana", True)


def test_two_approvers_clicking_at_the_same_moment_make_one_decision(wsvc):
    """Quorum 1, two allowed people, two threads racing: exactly one decision, one promote
    job, the other told who won."""
    import threading

    from webhook_server.jobs.queue import list_jobs

    rid = waiting(wsvc, {"default": {"approval": {"approvers": ["cli:ana", "cli:bob"]}}})
    barrier = threading.Barrier(2)
    outcomes = {}

    def click(actor):
        barrier.wait()
        try:
            outcomes[actor] = wsvc.workflow.decide(rid, actor, True)["state"]
        except DecisionConflict as exc:
            outcomes[actor] = str(exc)

    threads = [threading.Thread(target=click, args=(a,)) for a in ("cli:ana", "cli:bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [a for a, o in outcomes.items() if o == "approved"]
    assert len(winners) == 1, outcomes
    (loser,) = set(outcomes) - set(winners)
    assert f"request {rid} was already decided by {winners[0]} at " in outcomes[loser]
    with wsvc.store.read() as conn:
        promotes = [j for j in list_jobs(conn) if j["key"].startswith(f"request:{rid}:promote-")]
        row = reqs.get(conn, rid)
    assert len(promotes) == 1 and row.decided_by == winners[0]


def test_two_approvals_at_the_same_moment_meet_a_quorum_of_two(wsvc):
    """Quorum 2: two approvers racing each other must count 1 and 2, never 1 and 1 (the
    request row is locked while a decision counts, on PostgreSQL as on SQLite)."""
    import threading

    from webhook_server.jobs.queue import list_jobs

    policy = {"default": {"approval": {"approvers": ["cli:ana", "cli:bob"], "quorum": 2}}}
    for round_ in range(5):
        rid = waiting(wsvc, policy, key=f"race-{round_}")
        barrier = threading.Barrier(2)
        outcomes = {}

        def click(actor, rid=rid, barrier=barrier, outcomes=outcomes):
            workflow = wsvc.workflow
            barrier.wait()
            outcomes[actor] = workflow.decide(rid, actor, True)["state"]

        threads = [threading.Thread(target=click, args=(a,)) for a in ("cli:ana", "cli:bob")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes.values()) == ["approved", "awaiting_approval"], outcomes
        with wsvc.store.read() as conn:
            promotes = [j for j in list_jobs(conn)
                        if j["key"].startswith(f"request:{rid}:promote-")]
            assert reqs.get(conn, rid).state == "promoting" and len(promotes) == 1
