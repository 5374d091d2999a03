"""Governance fails closed: people (not identities) meet a quorum, the actor is who
authenticated (never a body field or LOGNAME), expiry holds at decision time, the requester
cannot approve, a rejection needs a reason, and an approval covers only the evidence it saw."""

from datetime import timedelta

import pytest
from sqlalchemy import update

from podium_policy.policy import parse_policy
from tests.support.registry import MemoryRegistry, comparison, passing
from tests.support.settings import make_settings
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import list_jobs
from webhook_server.jobs.worker import Worker
from webhook_server.store import audit, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.schema import request_events, utcnow
from webhook_server.workflow import DecisionConflict, DecisionRefused, Gates, NotAllowed

PEOPLE = {"alice": {"slack": "U0123ALICE", "cli": "alice", "api": "alice-bot",
                    "mlflow": "alice"},
          "bob": {"slack": "U0456BOB", "cli": "bob"},
          "carol": {"cli": "carol"}}

# strong tokens (serve refuses weak ones)
ALICE = "tok-alice-NBak07m8UJjBw7PU1vhyrn9Gu0Kmybdq"
CI = "tok-ci-y4RYtHsCTHviZ7A13DO0IZZ3DmK44L7x"


def policy(quorum=2, **approval):
    return parse_policy({"people": PEOPLE, "default": {"approval": {
        "targets": ["Production"], "approvers": ["alice", "bob", "carol"], "quorum": quorum,
        **approval}}})


@pytest.fixture
def gsvc(db_url, make_svc):
    svc = make_svc(make_settings(db_url, mlflow_tracking_uri="http://127.0.0.1:9",
                              named_api_tokens=f"alice-bot={ALICE},ci={CI}"))
    svc.registry = MemoryRegistry({"champion": "1"})
    return svc


def waiting(svc, pol, version="3", requested_by=None):
    """A request of ``version`` run by the real workflow until it waits for approval."""
    svc.policy = pol
    if requested_by:
        svc.registry.tags.setdefault(version, {})["requested_by"] = requested_by
    svc.registry.ask(version)
    rid = svc.intake.record(Delivery("mlflow", f"tag-{version}", "model_version_tag.set",
                                     "{}", TransitionRequested("churn", version, "Production",
                                                               "tag"))).request_id
    run_jobs(svc)
    assert state(svc, rid).state == states.AWAITING_APPROVAL
    return rid


def workflow(svc):
    return svc.use_gates(Gates(passing, lambda m, c, k: comparison(c, k)))


def run_jobs(svc):
    worker = Worker(svc.queue, {"request": workflow(svc).handle}, poll_s=0)
    while worker.run_once() is not None:
        pass


def state(svc, rid):
    with svc.store.read() as conn:
        return reqs.get(conn, rid)


def test_one_person_with_two_identities_counts_once_toward_a_quorum(gsvc):
    rid = waiting(gsvc, policy())
    first = workflow(gsvc).decide(rid, "slack:U0123ALICE", True)
    assert first["state"] == "awaiting_approval" and first["approvals"] == ["alice"]
    with pytest.raises(DecisionConflict, match="alice already approved request"):
        workflow(gsvc).decide(rid, "cli:alice", True)
    assert workflow(gsvc).decide(rid, "slack:U0456BOB", True)["state"] == "approved"


def test_an_identity_no_person_has_may_not_decide(gsvc):
    rid = waiting(gsvc, policy(quorum=1))
    with pytest.raises(NotAllowed, match=r"cli:mallory is not an approver of churn \(it maps "
                                         r"to no person in the policy's people:, so it may "
                                         r"read but never decide or operate\) \(who may: "
                                         r"alice, bob, carol\)"):
        workflow(gsvc).decide(rid, "cli:mallory", True)
    with gsvc.store.read() as conn:
        (denied,) = audit.entries(conn, action="denied")
    assert denied["actor"] == "cli:mallory"


def test_the_api_actor_is_the_token_never_the_body(gsvc):
    from webhook_server.web.app import create_app

    rid = waiting(gsvc, policy())
    client = create_app(gsvc.settings, services=gsvc).test_client()
    alice = {"Authorization": f"Bearer {ALICE}"}
    ok = client.post(f"/api/v1/requests/{rid}/approve", json={"actor": "bob"}, headers=alice)
    assert ok.status_code == 200 and ok.get_json()["approvals"] == ["alice"]
    again = client.post(f"/api/v1/requests/{rid}/approve", json={"actor": "carol"},
                        headers=alice)
    assert again.status_code == 409 and "alice already approved" in again.get_json()["error"]
    ci = client.post(f"/api/v1/requests/{rid}/approve", headers={"Authorization":
                                                                  f"Bearer {CI}"})
    assert ci.status_code == 403  # the token named "ci" is nobody's
    with gsvc.store.read() as conn:
        actors = [e["actor"] for e in audit.entries(conn, subject=f"request:{rid}")]
    assert sorted(actors) == ["api:alice-bot", "api:ci"]
    assert state(gsvc, rid).state == "awaiting_approval"


def test_the_cli_actor_is_the_os_account_not_logname(monkeypatch):
    import pwd

    from webhook_server.core.identity import cli_actor

    monkeypatch.setenv("LOGNAME", "alice")
    monkeypatch.setenv("USER", "alice")
    assert cli_actor() == f"cli:{pwd.getpwuid(__import__('os').getuid()).pw_name}"


def test_a_click_after_the_expiry_ends_the_request_instead_of_promoting(gsvc):
    rid = waiting(gsvc, policy(quorum=1, expiry_hours=1))
    with gsvc.store.tx() as conn:  # it has waited two hours; the scan has not run yet
        conn.execute(update(request_events).where(request_events.c.request_id == rid)
                     .values(at=utcnow() - timedelta(hours=2)))
    out = workflow(gsvc).decide(rid, "cli:alice", True)
    assert (out["state"], out["decided_by"]) == ("rejected", "policy")
    row = state(gsvc, rid)
    assert (row.state, row.reason) == ("rejected", "approval expired after 1 h")
    with gsvc.store.read() as conn:
        assert not [j for j in list_jobs(conn) if ":promote" in j["key"]]
    assert gsvc.registry.aliases["champion"] == "1"


@pytest.mark.parametrize("requester", ["cli:alice", "alice", "mlflow:alice"])
def test_the_requester_may_not_approve_their_own_promotion(gsvc, requester):
    rid = waiting(gsvc, policy(quorum=1), requested_by=requester)
    with pytest.raises(NotAllowed, match=r"\(alice\) requested this promotion and may not "
                                         r"approve it"):
        workflow(gsvc).decide(rid, "slack:U0123ALICE", True)
    assert workflow(gsvc).decide(rid, "cli:bob", True)["state"] == "approved"


def test_self_approval_is_allowed_only_when_the_policy_says_so(gsvc):
    rid = waiting(gsvc, policy(quorum=1, allow_self_approval=True), requested_by="cli:alice")
    assert workflow(gsvc).decide(rid, "cli:alice", True)["state"] == "approved"


def test_a_rejection_needs_a_reason_everywhere(gsvc):
    from click.testing import CliRunner

    from webhook_server.cli import main
    from webhook_server.web.app import create_app

    rid = waiting(gsvc, policy(quorum=1))
    with pytest.raises(DecisionRefused, match="a rejection needs a reason"):
        workflow(gsvc).decide(rid, "cli:bob", False, "  ")
    client = create_app(gsvc.settings, services=gsvc).test_client()
    bare = client.post(f"/api/v1/requests/{rid}/reject", headers={
        "Authorization": f"Bearer {ALICE}"})
    assert bare.status_code == 422 and "needs a reason" in bare.get_json()["error"]
    typed = client.post(f"/api/v1/requests/{rid}/reject", json={"reason": 5},
                        headers={"Authorization": f"Bearer {ALICE}"})
    assert typed.status_code == 422
    usage = CliRunner().invoke(main, ["reject", str(rid)])
    assert usage.exit_code == 2 and "--reason" in usage.output
    done = client.post(f"/api/v1/requests/{rid}/reject", json={"reason": "holdout too old"},
                       headers={"Authorization": f"Bearer {ALICE}"})
    assert done.status_code == 200
    assert state(gsvc, rid).reason == "rejected by api:alice-bot: holdout too old"


def test_an_approval_does_not_survive_a_new_comparison(gsvc):
    """Approved against champion v1; v2 became champion by hand before the promotion ran:
    the version is compared again and waits for a new approval (the old one is void)."""
    rid = waiting(gsvc, policy(quorum=1))
    assert workflow(gsvc).decide(rid, "cli:alice", True)["state"] == "approved"
    gsvc.registry.aliases["champion"] = "2"  # moved in the MLflow UI
    run_jobs(gsvc)
    row = state(gsvc, rid)
    assert row.state == "awaiting_approval" and row.compared_with == "2"
    assert "again" in row.reason and "earlier approvals do not count" in row.reason
    assert row.decided_by is None and gsvc.registry.aliases["champion"] == "2"
    assert workflow(gsvc).decide(rid, "cli:alice", True)["state"] == "approved"
    run_jobs(gsvc)
    assert state(gsvc, rid).state == "promoted" and gsvc.registry.aliases["champion"] == "3"
