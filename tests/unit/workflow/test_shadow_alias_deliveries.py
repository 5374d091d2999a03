"""Podium's own shadow-alias moves, delivered late. With live evidence the shadow alias is the
challenger alias, so MLflow's ``model_version_alias.created`` for Podium's move reads like a
person asking for a promotion, and the ``deleted`` for Podium's removal like a person
withdrawing one. MLflow retries a delivery that failed (Podium restarting, a 503) with the
time it was sent: judged as of that time, the move is the request's that made it, whenever it
arrives, and a removal withdraws nothing asked after it. A person who sets the alias after the
request ended still asks for a new one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.registry import Faults
from tests.unit.workflow.test_live_evidence import LiveRig
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.store import states
from webhook_server.store import transition_requests as reqs

LATER = timedelta(minutes=1)  # a person acting after the request ended


def alias_set(rig: LiveRig, version: str, delivery: str, sent_at: datetime):
    event = TransitionRequested(rig.model, version, "Production", "alias")
    return rig.svc.intake.record(Delivery("mlflow", delivery, "model_version_alias.created",
                                          "{}", event, sent_at=sent_at))


def shadowing(rig: LiveRig) -> tuple[int, datetime]:
    """v2 asked for by its tag, waiting on the challenger alias Podium put it on; and when
    MLflow sent the alias webhook of that move (before the request ends, however late)."""
    rid = rig.submit("2")
    rig.drive(rid, until=(states.SHADOWING,))
    assert rig.memory.aliases["challenger"] == "2"
    return rid, datetime.now(UTC)


def requests_of(rig: LiveRig) -> list[int]:
    with rig.svc.store.read() as conn:
        return [r.id for r in reqs.list_(conn, model=rig.model)]


def settle(rig: LiveRig) -> None:
    while rig.worker.run_once() is not None:
        pass


def test_the_alias_webhook_of_podiums_move_arriving_after_a_live_promotion_asks_nothing(svc):
    rig = LiveRig(svc, "churn-late-promoted", Faults(), approval=False)
    rid, sent = shadowing(rig)
    rig.labels("2", 1500, 0.10, seed=11)
    assert rig.drive(rid).state == states.PROMOTED
    got = alias_set(rig, "2", "late-alias-created", sent)
    settle(rig)
    assert requests_of(rig) == [rid] and got.request_id == rid
    assert "shadow alias" in got.detail
    # the decision's tags stay: no second request wrote "v2 is already the champion"
    assert rig.memory.tags["2"]["podium.status"] == states.PROMOTED
    assert rig.memory.tags["2"]["podium.request_id"] == str(rid)
    assert "challenger" not in rig.memory.aliases
    assert alias_set(rig, "2", "late-alias-created", sent).duplicate  # MLflow again


def test_the_alias_webhook_of_podiums_move_arriving_after_a_live_rejection_asks_nothing(svc):
    rig = LiveRig(svc, "churn-late-rejected", Faults(), approval=False)
    rid, sent = shadowing(rig)
    rig.labels("2", 1500, -0.10, seed=12)
    assert rig.drive(rid).state == states.REJECTED
    got = alias_set(rig, "2", "late-alias-created", sent)
    settle(rig)
    assert requests_of(rig) == [rid] and got.request_id == rid
    # not judged again, not back on the alias: the rejection stands
    assert "challenger" not in rig.memory.aliases
    assert rig.memory.tags["2"]["podium.status"] == states.REJECTED
    assert rig.memory.tags["2"]["podium.request_id"] == str(rid)


def test_a_person_setting_the_alias_after_a_live_rejection_asks_again(svc):
    rig = LiveRig(svc, "churn-late-asked-again", Faults(), approval=False)
    rid, _ = shadowing(rig)
    rig.labels("2", 1500, -0.10, seed=13)
    ended = rig.drive(rid)
    assert ended.state == states.REJECTED
    rig.memory.ask("2", "alias")  # the person puts v2 on the challenger alias again
    got = alias_set(rig, "2", "person-sets-challenger", ended.updated_at + LATER)
    assert got.request_id not in (None, rid) and not got.already_open
    assert rig.drive(got.request_id, until=(states.SHADOWING,)).origin == "alias"


def test_the_alias_webhook_of_podiums_move_while_the_request_awaits_approval_joins_it(svc):
    """After a live pass the version is still on the alias, waiting for a person: the move's
    webhook arriving then (late, or the reconciler's sight of the alias) is that request's,
    and supersedes nothing."""
    rig = LiveRig(svc, "churn-late-approval", Faults())
    rid, sent = shadowing(rig)
    rig.labels("2", 1500, 0.10, seed=14)
    rig.drive(rid, until=(states.AWAITING_APPROVAL,), approve=False)
    got = alias_set(rig, "2", "late-alias-created", sent)
    assert (got.request_id, got.already_open) == (rid, True)
    assert requests_of(rig) == [rid] and rig.get(rid).state == states.AWAITING_APPROVAL
    assert rig.drive(rid).state == states.PROMOTED
