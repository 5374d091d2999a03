"""A rollback the monitoring job proposes (``monitoring.on_decay: propose``), decided in Slack:
the request's message shows Rollback / Dismiss carrying the evidence digest; a signed click
by someone who may roll back agrees (the rollback quorum counts people), and the champion
goes back with its ledger row; Dismiss asks why and leaves the champion; someone who may
approve promotions but not roll back changes nothing."""

from datetime import UTC, datetime

from podium_policy.policy import parse_policy
from tests.support.slack_rig import ALICE, BOB, EVE
from tests.unit.monitoring.logdata import decayed_beside_former
from webhook_server.jobs.queue import Job
from webhook_server.monitoring import job as monitoring
from webhook_server.monitoring.report import period_of
from webhook_server.service.handlers import for_services
from webhook_server.store import ledger
from webhook_server.store import transition_requests as reqs

NOW = datetime.now(UTC)


def proposed(rig, *, quorum: int = 1) -> int:
    """churn's champion v3 decayed beside v2, its shadowed predecessor; ALICE and BOB may
    roll back (EVE approves promotions only); the monitoring job ran and its proposal's
    message is in Slack. The proposal's request id."""
    rig.svc.policy = parse_policy({"default": {
        "approval": {"targets": ["Production"], "approvers": [ALICE, BOB, EVE]},
        "rollback": {"approvers": [ALICE, BOB], "quorum": quorum},
        "monitoring": {"min_labels": 200, "shadow_former": True, "on_decay": "propose"}}})
    rig.registry.aliases["champion"] = "3"
    decayed_beside_former(rig.svc.store, NOW)
    period = period_of(NOW, "week")
    for_services(rig.svc)["monitor"](Job(
        id=0, kind="monitor", key=monitoring.job_key("churn", period),
        payload={"model": "churn", "period": period}, attempts=1, max_attempts=5,
        lease_owner="test"))
    with rig.svc.store.read() as conn:
        (req,) = [r for r in reqs.list_(conn, model="churn") if r.origin == "rollback"]
    rig.sender.flush()
    return req.id


def buttons(message):
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    return actions[0]["elements"] if actions else []


def champion_moves(rig) -> list[tuple]:
    with rig.svc.store.read() as conn:
        return [(e["kind"], e["from_version"], e["to_version"], e["actor"])
                for e in ledger.entries(conn, "churn")]


def test_the_proposal_shows_rollback_and_dismiss_with_the_live_evidence(rig):
    rid = proposed(rig)
    (parent,) = [m for m in rig.fake.parents() if "churn v2" in m["text"]]
    rollback, dismiss = buttons(parent)
    value = f"{rid}:{rig.state(rid).evidence_digest()}"
    assert (rollback["text"]["text"], rollback["value"], rollback["action_id"]) == (
        "Rollback", value, "podium_approve")
    assert (dismiss["text"]["text"], dismiss["value"], dismiss["action_id"]) == (
        "Dismiss", value, "podium_reject")
    assert rollback["confirm"]["title"]["text"] == "Roll back to this version?"
    shown = " ".join(b.get("text", {}).get("text", "") for b in parent["blocks"]
                     if b["type"] == "section")
    assert "*Comparison* live roc_auc v2 " in shown and "vs champion v3" in shown
    assert "champion v3 decayed and v2 is significantly better live" in shown


def test_a_signed_rollback_click_moves_the_champion_back(rig):
    rid = proposed(rig)
    assert rig.click(rid, ALICE).status_code == 200
    rig.run_jobs()  # the click's job, then the rollback's
    row = rig.state(rid)
    assert (row.state, row.decided_by) == ("promoted", f"slack:{ALICE}")
    assert rig.registry.aliases["champion"] == "2"
    assert champion_moves(rig)[-1] == ("rollback", "3", "2", f"slack:{ALICE}")
    rig.sender.flush()
    assert rig.fake.ephemerals[-1]["user"] == ALICE
    assert rig.fake.ephemerals[-1]["text"] == \
        f"You agreed to request {rid}: rolling churn back to v2."


def test_with_a_rollback_quorum_of_two_one_click_waits_for_the_other(rig):
    rid = proposed(rig, quorum=2)
    rig.click(rid, ALICE)
    rig.run_jobs()
    assert rig.state(rid).state == "awaiting_approval"
    rig.sender.flush()
    assert "(1 of 2)" in rig.fake.ephemerals[-1]["text"]
    rig.click(rid, BOB)
    rig.run_jobs()
    assert rig.state(rid).state == "promoted" and rig.registry.aliases["champion"] == "2"


def test_dismiss_asks_why_and_the_champion_stays(rig):
    rid = proposed(rig)
    assert rig.reject(rid, BOB, "the outcomes of that week are incomplete").status_code == 200
    assert rig.fake.views[-1]["view"]["title"]["text"] == "Dismiss this rollback"
    row = rig.state(rid)
    assert (row.state, row.reason) == (
        "rejected", f"rejected by slack:{BOB}: the outcomes of that week are incomplete")
    assert rig.registry.aliases["champion"] == "3"
    assert champion_moves(rig)[-1] == ("promote", "2", "3", "policy")


def test_an_approver_who_may_not_roll_back_changes_nothing(rig):
    rid = proposed(rig)
    rig.click(rid, EVE)
    rig.run_jobs()
    assert rig.state(rid).state == "awaiting_approval"
    rig.sender.flush()
    assert rig.fake.ephemerals[-1]["text"].startswith(
        f"Nothing changed: slack:{EVE} may not roll back churn")


def test_a_click_on_stale_evidence_counts_nothing(rig):
    rid = proposed(rig)
    rig.click(rid, ALICE, value=f"{rid}:{'0' * 64}")
    rig.run_jobs()
    assert rig.state(rid).state == "awaiting_approval"
    rig.sender.flush()
    assert "is no longer current" in rig.fake.ephemerals[-1]["text"]
