"""Decay that asks for a rollback (policy ``monitoring.on_decay``): when the champion decayed
and the former champion, shadowed, is significantly better live on the same outcomes,
``propose`` opens one rollback request with that evidence (never a second one for the same
decay, open or dismissed), ``rollback`` moves the champion back with its ledger row and says
so in the alert, and ``alert`` (the default) only alerts, as before."""

import json
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from podium_policy.policy import parse_policy
from tests.support.registry import MemoryRegistry, comparison, passing
from tests.support.rollback import see_through
from tests.unit.monitoring.logdata import decayed_beside_former
from webhook_server.adapters.notify import messages
from webhook_server.monitoring import job as monitoring
from webhook_server.monitoring.decay import period_start
from webhook_server.monitoring.report import period_of
from webhook_server.service.handlers import for_services
from webhook_server.store import ledger
from webhook_server.store import transition_requests as reqs
from webhook_server.store.schema import outbox
from webhook_server.workflow import Gates, Workflow

NOW = datetime.now(UTC)
WEEK = period_of(NOW, "week")


def policy(on_decay: str | None) -> dict:
    monitoring_ = {"min_labels": 200, "shadow_former": True}
    if on_decay is not None:
        monitoring_["on_decay"] = on_decay
    return {"people": {"ana": {"cli": "ana"}, "ben": {"cli": "ben"}},
            "default": {"rollback": {"approvers": ["ana", "ben"]},
                        "monitoring": monitoring_}}


@pytest.fixture
def decayed(svc):
    """churn: champion v3 decayed; v2, the champion it replaced, shadowed and better."""
    decayed_beside_former(svc.store, NOW)
    return svc


def run_monitor(svc, period: str = WEEK) -> dict:
    """The monitoring job of ``period``, run the way a worker runs it; what it found (the
    audit row's detail)."""
    from webhook_server.jobs.queue import Job
    from webhook_server.store import audit

    handle = for_services(svc)["monitor"]
    handle(Job(id=0, kind="monitor", key=monitoring.job_key("churn", period),
               payload={"model": "churn", "period": period}, attempts=1, max_attempts=5,
               lease_owner="test"))
    with svc.store.read() as conn:
        return audit.entries(conn, subject="churn", action="monitor", limit=1)[0]["detail"]


def rollbacks(svc) -> list:
    with svc.store.read() as conn:
        return [r for r in reqs.list_(conn, model="churn") if r.origin == "rollback"]


def alert_text(svc, period: str = WEEK) -> str:
    with svc.store.read() as conn:
        payload = conn.execute(select(outbox.c.payload).where(
            outbox.c.key == monitoring.job_key("churn", period))).scalar_one()
    return messages.text(json.loads(payload))


def run_requests(workflow: Workflow, request_id: int):
    """Run every queued request job, as a worker would; the request as it ends."""
    from webhook_server.jobs.worker import Worker

    worker = Worker(workflow.queue, {"request": workflow.handle}, poll_s=0)
    while worker.run_once() is not None:
        pass
    with workflow.store.read() as conn:
        return reqs.get(conn, request_id)


def workflow_of(svc, champion: str = "3") -> tuple[Workflow, MemoryRegistry]:
    registry = MemoryRegistry({"champion": champion})
    return Workflow(svc.store, svc.queue, registry, svc.policy,
                    Gates(passing, lambda m, c, k: comparison(c, k)), intake=svc.intake), \
        registry


def test_propose_opens_one_rollback_request_carrying_the_live_evidence(decayed):
    svc = decayed
    svc.policy = parse_policy(policy("propose"))
    found = run_monitor(svc)
    assert found["decayed"] is True
    ((req,),) = [rollbacks(svc)]
    assert (req.state, req.version, req.compared_with, req.requested_by) == (
        "awaiting_approval", "2", "3", "monitor")
    assert re.fullmatch(r"live roc_auc v2 0\.9\d+ vs champion v3 0\.7\d+ on 1,000 labelled "
                        rf"outcomes since {period_start(WEEK, 'week'):%Y-%m-%d}: \+0\.\d+, "
                        r"always-valid 95% interval \[\+0\.\d+, \+0\.\d+\]", req.comparison)
    assert req.reason.startswith("champion v3 decayed and v2 is significantly better live")
    live = req.evidence_json()["decay"]["live"]
    assert live["pairs"] == 1000 and live["verdict"] == "better" and live["lower"] > 0
    assert found["rollback"]["state"] == "awaiting_approval"
    assert found["rollback"]["request"] == req.id
    assert f"proposed as request {req.id}: Rollback or Dismiss it" in alert_text(svc)
    with svc.store.read() as conn:  # nothing moved: it waits for who may roll back
        assert ledger.current(conn, "churn", "champion") == "3"


def test_the_proposal_is_not_asked_again_while_open_nor_after_a_dismissal(decayed):
    svc = decayed
    svc.policy = parse_policy(policy("propose"))
    run_monitor(svc)
    (req,) = rollbacks(svc)
    again = run_monitor(svc, "2099-W01")  # a later period's run: the decay persists
    assert again["rollback"]["state"] == "not asked"
    assert again["rollback"]["note"] == f"rollback request {req.id} is open (awaiting_approval)"
    workflow, _ = workflow_of(svc)
    workflow.decide(req.id, "cli:ana", False, "the labels of that week are late")
    assert rollbacks(svc)[0].state == "rejected"
    later = run_monitor(svc, "2099-W02")
    assert later["rollback"]["state"] == "already asked"
    assert later["rollback"]["note"] == f"request {req.id} asked it for this decay (rejected)"
    assert len(rollbacks(svc)) == 1


def test_an_agreed_proposal_rolls_back_with_who_agreed_in_the_ledger(decayed):
    svc = decayed
    svc.policy = parse_policy(policy("propose"))
    run_monitor(svc)
    (req,) = rollbacks(svc)
    workflow, registry = workflow_of(svc)
    assert workflow.decide(req.id, "cli:ben", True,
                           evidence=req.evidence_digest())["state"] == "approved"
    done = run_requests(workflow, req.id)
    assert (done.state, registry.aliases["champion"]) == ("promoted", "2")
    with svc.store.read() as conn:
        last = ledger.entries(conn, "churn")[-1]
    assert (last["kind"], last["from_version"], last["to_version"], last["actor"]) == (
        "rollback", "3", "2", "cli:ben")


def test_a_proposal_agreed_after_the_champion_moved_changes_nothing(decayed):
    svc = decayed
    svc.policy = parse_policy(policy("propose"))
    run_monitor(svc)
    (req,) = rollbacks(svc)
    with svc.store.tx() as conn:  # v4 promoted meanwhile
        ledger.record(conn, model="churn", alias="champion", from_version="3",
                      to_version="4", kind="promote", actor="policy")
    workflow, registry = workflow_of(svc, champion="4")
    workflow.decide(req.id, "cli:ana", True)
    done = run_requests(workflow, req.id)
    assert done.state == "rejected" and "the champion is v4 now, not v3" in done.reason
    assert registry.aliases["champion"] == "4"


def test_a_proposal_agreed_after_the_champion_left_and_came_back_changes_nothing(decayed):
    """The proposal answered v3's decay in the tenure it had then; v4 was promoted and v3
    rolled back to meanwhile: a new tenure, whose decay nobody found nor showed."""
    svc = decayed
    svc.policy = parse_policy(policy("propose"))
    run_monitor(svc)
    (req,) = rollbacks(svc)
    with svc.store.tx() as conn:
        ledger.record(conn, model="churn", alias="champion", from_version="3",
                      to_version="4", kind="promote", actor="policy")
        ledger.record(conn, model="churn", alias="champion", from_version="4",
                      to_version="3", kind="rollback", actor="cli:ana")
    workflow, registry = workflow_of(svc)
    workflow.decide(req.id, "cli:ana", True, evidence=req.evidence_digest())
    done = run_requests(workflow, req.id)
    assert done.state == "rejected" and "v3's tenure whose decay" in done.reason
    assert registry.aliases["champion"] == "3"
    with svc.store.read() as conn:
        assert ledger.current(conn, "churn", "champion") == "3"


def test_on_decay_rollback_moves_the_champion_back_with_its_ledger_row_and_alert(decayed):
    svc = decayed
    svc.policy = parse_policy(policy("rollback"))
    found = run_monitor(svc)
    (req,) = rollbacks(svc)
    assert found["rollback"]["state"] == "queued" and req.state == "queued"
    assert f"rolling back now (request {req.id})" in alert_text(svc)
    workflow, registry = workflow_of(svc)
    done = see_through(workflow, req.id)
    assert (done.state, done.decided_by, registry.aliases["champion"]) == (
        "promoted", "monitor", "2")
    with svc.store.read() as conn:
        last = ledger.entries(conn, "churn")[-1]
    assert (last["kind"], last["from_version"], last["to_version"], last["actor"],
            last["request_id"]) == ("rollback", "3", "2", "monitor", req.id)


@pytest.mark.parametrize("on_decay", [None, "alert"])
def test_alert_the_default_only_alerts_as_before(decayed, on_decay):
    svc = decayed
    svc.policy = parse_policy(policy(on_decay))
    found = run_monitor(svc)
    assert found["decayed"] is True and found["rollback"] is None
    assert rollbacks(svc) == []
    text = alert_text(svc)
    assert "DECAY: churn v3 in " in text and "rollback" not in text


def test_a_former_champion_no_better_live_is_not_proposed(svc):
    decayed_beside_former(svc.store, NOW, former_separation=0.5)
    svc.policy = parse_policy(policy("propose"))
    found = run_monitor(svc)
    assert found["decayed"] is True and rollbacks(svc) == []
    assert found["rollback"]["state"] == "not asked" and found["rollback"]["better"] is False
    assert "v2 is not significantly better live than v3" in alert_text(svc)


def test_period_start_inverts_period_of():
    at = datetime(2026, 6, 3, 15, tzinfo=UTC)
    for period, start in (("day", datetime(2026, 6, 3, tzinfo=UTC)),
                          ("week", datetime(2026, 6, 1, tzinfo=UTC)),
                          ("month", datetime(2026, 6, 1, tzinfo=UTC))):
        assert period_start(period_of(at, period), period) == start
