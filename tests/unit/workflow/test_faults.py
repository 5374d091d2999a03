"""Fault sweeps: fail the N-th MLflow call of a whole promotion (checks, compare, approve,
promote, archive the predecessor) and of a rollback, for every N, before the call takes
effect and after it took effect (answer lost); with retries allowed the invariants hold:

- the request is terminal (promoted: the gates pass, so nothing should stop it);
- the champion alias equals the ledger's last applied move, no intent is left behind;
- one ledger row and one alias move per move (nothing moved twice);
- the promoted version is tagged ``promoted`` and its predecessor ``archived``;
- one decision: one approval recorded, one transition into the final state.
"""

from __future__ import annotations

import json

import pytest

from podium_policy.policy import parse_policy
from tests.support.registry import (
    Faults,
    FaultyRegistry,
    MemoryRegistry,
    comparison,
    fake_bundle,
    passing,
)
from tests.support.rollback import roll_back
from webhook_server.adapters.notify import messages
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import SqlJobQueue
from webhook_server.jobs.worker import Worker
from webhook_server.store import audit, ledger, states
from webhook_server.store import transition_requests as reqs
from webhook_server.workflow import Gates, Workflow

APPROVAL = {"default": {"approval": {"targets": ["Production"], "approvers": ["cli:ana"]}}}


class Rig:
    """One model in the store and an in-memory registry whose N-th call fails once."""

    def __init__(self, svc, model: str, faults: Faults, champion: str = "1") -> None:
        self.svc, self.model, self.faults = svc, model, faults
        self.memory = MemoryRegistry({"champion": champion})
        self.memory.tags[champion] = {"podium.status": "promoted"}
        registry = FaultyRegistry(self.memory, faults)
        gates = Gates(check=faults.wrap("check", passing),
                      compare=faults.wrap("compare", lambda m, c, k: comparison(c, k)),
                      bundle=faults.wrap("bundle", fake_bundle))
        self.queue = SqlJobQueue(svc.store, backoff_s=0, max_attempts=10)
        self.workflow = Workflow(svc.store, self.queue, registry,
                                 parse_policy(APPROVAL), gates)
        self.queue.on_dead("request", self.workflow.on_dead)
        self.worker = Worker(self.queue, {"request": self.workflow.handle}, poll_s=0)
        with svc.store.tx() as conn:  # v1 became champion through Podium earlier
            ledger.record(conn, model=model, alias="champion", from_version=None,
                          to_version=champion, kind=ledger.PROMOTE, actor="policy")

    def submit(self, version: str) -> int:
        self.memory.ask(version)
        event = TransitionRequested(self.model, version, "Production", "tag")
        return self.svc.intake.record(Delivery("mlflow", f"{self.model}-{version}",
                                               "model_version_tag.set", "{}",
                                               event)).request_id

    def drive(self, request_id: int) -> dict:
        """Run jobs until the request ends; approve it (as cli:ana) when it waits."""
        for _ in range(200):
            if self.worker.run_once() is not None:
                continue
            req = self.get(request_id)
            if req.state in states.TERMINAL:
                return req
            if req.state == states.AWAITING_APPROVAL:
                self.workflow.decide(request_id, "cli:ana", True)
                continue
            raise AssertionError(f"no job to run and request {request_id} is "
                                 f"{req.state}")
        raise AssertionError("the request never settled")

    def get(self, request_id: int) -> dict:
        with self.svc.store.read() as conn:
            return reqs.get(conn, request_id)

    def assert_invariants(self, *, champion: str, predecessor: str,
                          moves: list[tuple[str | None, str]]) -> None:
        with self.svc.store.read() as conn:
            applied = ledger.entries(conn, self.model, alias="champion")
            everything = ledger.entries(conn, self.model, include_unapplied=True)
        assert self.memory.aliases["champion"] == champion == applied[-1]["to_version"]
        assert [(e["from_version"], e["to_version"]) for e in applied] == moves
        assert [e for e in everything if e["state"] == ledger.INTENT] == []
        # the move's row keeps the digest of the files the alias moved to, whatever crashed
        assert applied[-1]["model_sha256"] == self.memory.model_sha256(self.model, champion)
        assert [(a, b) for _, a, b in self.memory.moves] == moves[1:]  # each move once
        assert self.memory.tags[champion]["podium.status"] == "promoted"
        assert self.memory.tags[predecessor]["podium.status"] == "archived"


def count_calls(svc, flow) -> int:
    faults = Faults()
    flow(Rig(svc, "churn-count", faults))
    return len(faults.calls)


def promotion(rig: Rig) -> None:
    rid = rig.submit("2")
    req = rig.drive(rid)
    assert (req.state, req.decided_by) == ("promoted", "cli:ana"), rig.faults.fired
    rig.assert_invariants(champion="2", predecessor="1", moves=[(None, "1"), ("1", "2")])
    with rig.svc.store.read() as conn:
        approvals = audit.approvals(conn, f"request:{rid}")
        finals = [e for e in reqs.history(conn, rid) if e.to_state == states.PROMOTED]
    assert list(approvals) == ["cli:ana"] and len(finals) == 1
    # no decision without its bundle: the digest the request keeps names one that was logged
    digest = rig.get(rid).bundle_sha256
    assert digest and digest in rig.memory.evidence, rig.faults.fired
    with rig.svc.store.read() as conn:
        moved = ledger.entries(conn, rig.model, alias="champion")[-1]
    assert moved["bundle_sha256"] == digest


@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_promotion_survives_a_failure_of_any_mlflow_call(svc, mode):
    total = count_calls(svc, promotion)
    assert total >= 10  # checks, tags, compare, alias read, set, read back, tags...
    for n in range(1, total + 1):
        faults = Faults(fail_at=n, mode=mode)
        promotion(Rig(svc, f"churn-{mode}-{n}", faults))
        assert faults.fired, f"call {n} of {total} was never made"


def rolled_back(rig: Rig) -> None:
    """A clean promotion 1 -> 2, then the faults hit the rollback 2 -> 1."""
    fail_at, rig.faults.fail_at = rig.faults.fail_at, None
    promotion(rig)
    rig.faults.calls.clear()
    rig.faults.fail_at = fail_at
    out = roll_back(rig.workflow, rig.model, "cli:ana", "1", timeout_s=10)
    assert (out["state"], out["from"], out["to"]) == ("promoted", "2", "1"), rig.faults.fired
    rig.assert_invariants(champion="1", predecessor="2",
                          moves=[(None, "1"), ("1", "2"), ("2", "1")])


@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_rollback_survives_a_failure_of_any_mlflow_call(svc, mode):
    faults = Faults()
    rig = Rig(svc, "churn-rb-count", faults)
    rolled_back(rig)
    total = len(faults.calls)
    assert total >= 4
    for n in range(1, total + 1):
        faults = Faults(fail_at=n, mode=mode)
        rolled_back(Rig(svc, f"churn-rb-{mode}-{n}", faults))
        assert faults.fired, f"call {n} of {total} was never made"


def test_a_late_retry_of_a_replaced_champions_job_leaves_it_archived(svc):
    """A request's job killed after its alias move, retried only after the next promotion
    replaced its version (the full drill saw it under kill -9): the late `_finish` must not
    tag the former champion `promoted` again."""
    from webhook_server.jobs.queue import Job

    rig = Rig(svc, "churn-late", Faults())
    first = rig.submit("2")
    assert rig.drive(first).state == states.PROMOTED
    second = rig.submit("3")
    assert rig.drive(second).state == states.PROMOTED
    assert rig.memory.tags["2"]["podium.status"] == "archived"
    rig.workflow.handle(Job(99, f"request:{first}:late", "request", {"request_id": first},
                            2, 10, "w"))  # the retried job of the first request, late
    assert rig.memory.tags["2"]["podium.status"] == "archived"
    assert rig.memory.tags["3"]["podium.status"] == "promoted"
    assert rig.memory.aliases["champion"] == "3"


def reverted(rig: Rig) -> None:
    """The champion v1 moved by hand to v7; the faults hit the revert job that puts it
    back: the alias ends at v1, the ledger says external then reverted, nothing is left in
    flight, the alias was set back once, and one alert was queued."""
    from webhook_server.store import outbox as ob
    from webhook_server.workflow import guard

    fail_at, rig.faults.fail_at = rig.faults.fail_at, None
    rig.memory.set_alias(rig.model, "champion", "7")  # by hand, in the MLflow UI
    with rig.svc.store.tx() as conn:
        guard.enqueue(rig.queue, conn, rig.model, "champion", "test")
    rig.faults.calls.clear()
    rig.faults.fail_at = fail_at
    worker = Worker(rig.queue, {"revert": rig.workflow.revert}, poll_s=0)
    for _ in range(50):
        if worker.run_once() is None:
            break
    with rig.svc.store.read() as conn:
        rows = [(e["kind"], e["from_version"], e["to_version"], e["state"])
                for e in ledger.entries(conn, rig.model, include_unapplied=True)]
        alerts = [r for r in ob.list_(conn, limit=1000)
                  if r["key"].endswith(":reverted")
                  and f" {rig.model}: alias" in messages.text(json.loads(r["payload"]))]
    assert rig.memory.aliases["champion"] == "1", rig.faults.fired
    assert [r for r in rows if r[3] == ledger.APPLIED] == [
        ("promote", None, "1", "applied"), ("external", "1", "7", "applied"),
        ("reverted", "7", "1", "applied")], rig.faults.fired
    assert not [r for r in rows if r[3] == ledger.INTENT]
    assert rig.memory.moves == [("champion", "1", "7"), ("champion", "7", "1")]
    assert len(alerts) == 1


@pytest.mark.parametrize("mode", ["before", "after"])
def test_a_revert_of_a_hand_moved_champion_survives_a_failure_of_any_mlflow_call(svc, mode):
    faults = Faults()
    reverted(Rig(svc, "churn-rv-count", faults))
    total = len(faults.calls)
    assert total >= 4  # read the alias, the files' digest, set, read back
    for n in range(1, total + 1):
        faults = Faults(fail_at=n, mode=mode)
        reverted(Rig(svc, f"churn-rv-{mode}-{n}", faults))
        assert faults.fired, f"call {n} of {total} was never made"
