"""Rollback: a job under the model lock, only to a former champion, refused clearly
otherwise; champions moved outside Podium are recorded by the reconciler's check."""

import json

import pytest

from podium_policy.policy import parse_policy
from tests.support.registry import MemoryRegistry, comparison, passing
from tests.support.rollback import roll_back, see_through
from tests.support.settings import API_TOKEN
from webhook_server.adapters.notify import messages
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import list_jobs
from webhook_server.store import audit, ledger
from webhook_server.store import outbox as ob
from webhook_server.store import transition_requests as reqs
from webhook_server.workflow import Gates, NotAllowed, RollbackRefused, Workflow, moves

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
# ana may roll back, as cli:ana or with the API token (named "default"); nobody else may
ROLLBACK_POLICY = {"people": {"ana": {"cli": "ana", "api": "default"}},
                   "default": {"rollback": {"approvers": ["ana"]}}}


@pytest.fixture
def rig(svc):
    """churn: v1 promoted, then v2 promoted (ledger: -> 1, 1 -> 2); v9 never champion."""
    svc.policy = parse_policy(ROLLBACK_POLICY)
    registry = MemoryRegistry()
    workflow = Workflow(svc.store, svc.queue, registry, svc.policy,
                        Gates(passing, lambda m, c, k: comparison(c, k)))
    for version in ("1", "2"):
        rid = svc.intake.record(Delivery("api", f"d-{version}", "api.request", "{}",
                                         TransitionRequested("churn", version, "Production",
                                                             "api"))).request_id
        assert see_through(workflow, rid, timeout_s=10).state == "promoted"
    assert registry.aliases["champion"] == "2"
    return svc, registry, workflow


def test_a_rollback_goes_back_to_the_previous_champion_and_is_recorded(rig):
    svc, registry, workflow = rig
    out = roll_back(workflow, "churn", "cli:ana")
    assert (out["from"], out["to"], out["state"]) == ("2", "1", "promoted")
    assert registry.aliases["champion"] == "1"
    assert registry.tags["1"]["podium.status"] == "promoted"
    assert registry.tags["2"]["podium.status"] == "archived"
    with svc.store.read() as conn:
        last = ledger.entries(conn, "churn")[-1]
        req = reqs.get(conn, out["request"])
    assert (last["kind"], last["from_version"], last["to_version"], last["actor"],
            last["request_id"]) == ("rollback", "2", "1", "cli:ana", out["request"])
    assert (req.origin, req.decided_by, req.reason) == (
        "rollback", "cli:ana", "champion rolled back from v2 to v1")


def test_only_the_policys_rollback_approvers_may_roll_back(rig):
    svc, registry, workflow = rig
    for actor in ("cli:mallory", "api:ci"):  # identities that map to no person
        with pytest.raises(NotAllowed, match=f"{actor} may not roll back churn .*maps to no "
                                             r"person.* \(who may: ana\)"):
            roll_back(workflow, "churn", actor)
    assert registry.aliases["champion"] == "2"
    with svc.store.read() as conn:
        assert [r.origin for r in reqs.list_(conn)] == ["api", "api"]  # nothing queued
        assert sorted(d["actor"] for d in audit.entries(conn, action="denied")) == [
            "api:ci", "cli:mallory"]


@pytest.mark.parametrize("to,status,message", [
    ("9", 422, "v9 of churn was never champion: a rollback goes only to a former champion "
               r"\(v1\)"),
    ("2", 409, "v2 is already the champion of churn"),
])
def test_a_rollback_to_anything_but_a_former_champion_is_refused(rig, to, status, message):
    svc, registry, workflow = rig
    with pytest.raises(RollbackRefused, match=message) as refused:
        roll_back(workflow, "churn", "cli:ana", to)
    assert refused.value.status == status
    assert registry.aliases["champion"] == "2"
    with svc.store.read() as conn:
        assert [r.origin for r in reqs.list_(conn)] == ["api", "api"]  # nothing queued


def test_a_model_podium_never_promoted_has_nothing_to_roll_back(svc):
    svc.policy = parse_policy(ROLLBACK_POLICY)
    workflow = Workflow(svc.store, svc.queue, MemoryRegistry({"champion": "4"}), svc.policy,
                        Gates(passing, None))
    with pytest.raises(RollbackRefused, match="no champion of other in the ledger") as refused:
        roll_back(workflow, "other", "cli:ana", "3")
    assert refused.value.status == 404


def test_the_api_queues_a_rollback_and_refuses_a_version_never_champion(rig, app):
    svc, registry, workflow = rig
    svc.registry = registry  # the API builds its workflow from the services
    client = app.test_client()
    bad = client.post("/api/v1/models/churn/rollback", json={"to": "9"}, headers=AUTH)
    assert bad.status_code == 422 and "never champion" in bad.get_json()["error"]
    typed = client.post("/api/v1/models/churn/rollback", json={"to": ["1"]}, headers=AUTH)
    assert typed.status_code == 422
    ok = client.post("/api/v1/models/churn/rollback", json={"to": 1}, headers=AUTH)
    assert ok.status_code == 202 and ok.get_json()["to"] == "1"
    with svc.store.read() as conn:
        job = [j for j in list_jobs(conn) if j["key"] == f"request:{ok.get_json()['request']}"]
    assert job[0]["lock_key"] == "model:churn" and job[0]["state"] == "queued"
    assert registry.aliases["champion"] == "2"  # nothing moved before the job runs


def test_a_rollback_waits_for_an_unsettled_move_of_another_request(rig):
    """A promotion whose job died after recording its intent holds the model: the rollback
    job is deferred (no attempt spent) until that move is settled."""
    svc, registry, workflow = rig
    rid = svc.intake.record(Delivery("api", "d-3", "api.request", "{}", TransitionRequested(
        "churn", "3", "Production", "api"))).request_id
    with svc.store.tx() as conn:
        for a, b in (("queued", "checking"), ("checking", "comparing")):
            reqs.transition(conn, rid, expect=(a,), to=b, actor="test")
        moves.begin(conn, reqs.get(conn, rid), expect=("comparing",), alias="champion",
                    from_version="2", kind="promote", actor="policy")
    asked = workflow.request_rollback("churn", "cli:ana", "1")
    req = see_through(workflow, asked["request"], timeout_s=0.5)
    assert req.state == "queued" and registry.aliases["champion"] == "2"
    with svc.store.read() as conn:
        job = [j for j in list_jobs(conn) if j["key"] == f"request:{asked['request']}"][0]
    assert "unfinished move of request" in job["last_error"] and job["attempts"] == 0


def test_a_champion_moved_in_the_mlflow_ui_is_recorded_as_external_once(rig):
    """With ``aliases.protect: alert`` (the default, revert, puts it back: test_side_doors)."""
    svc, registry, workflow = rig
    workflow.policy = svc.policy = parse_policy(
        {**ROLLBACK_POLICY, "default": {**ROLLBACK_POLICY["default"],
                                        "aliases": {"protect": "alert"}}})
    assert workflow.check_champions() == {}
    registry.aliases["champion"] = "7"  # someone in the MLflow UI
    assert workflow.check_champions() == {"churn": "champion at v7"}
    assert workflow.check_champions() == {}
    with svc.store.read() as conn:
        last = ledger.entries(conn, "churn")[-1]
        alerts = [r for r in ob.list_(conn) if r["kind"] == "message"
                  and "outside Podium" in messages.text(json.loads(r["payload"]))]
    assert (last["kind"], last["from_version"], last["to_version"]) == ("external", "2", "7")
    assert len(alerts) == 1
    # the way back from a version set by hand is the last champion Podium chose
    out = roll_back(workflow, "churn", "cli:ana")
    assert (out["from"], out["to"], registry.aliases["champion"]) == ("7", "2", "2")


def test_a_promotion_settling_while_the_reconciler_looks_is_not_taken_for_external(rig):
    """The reconciler reads the alias (still v2); the promotion 2 -> 3 then moves it and
    commits; the reconciler must not record 'external 3 -> 2' from its stale read."""
    svc, registry, workflow = rig

    class Racing(MemoryRegistry):
        def alias_version(self, model, alias):
            seen = registry.aliases[alias]
            registry.aliases[alias] = "3"  # the promotion lands right after our read
            with svc.store.tx() as conn:
                ledger.record(conn, model="churn", alias=alias, from_version=seen,
                              to_version="3", kind="promote", actor="policy")
            return seen

    workflow.registry = Racing()
    assert workflow.check_champions() == {}
    with svc.store.read() as conn:
        kinds = [e["kind"] for e in ledger.entries(conn, "churn")]
    assert kinds == ["promote", "promote", "promote"]
