"""No open request without a live job: a request job that goes dead ends its request
``failed`` with the reason (tag, Slack), and ``podium replay`` brings it back where it was."""

import json

from podium_policy.policy import parse_policy
from tests.support.registry import Faults, FaultyRegistry, MemoryRegistry, comparison, passing
from webhook_server.adapters.notify import messages
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.jobs.queue import SqlJobQueue, list_jobs
from webhook_server.jobs.worker import Worker
from webhook_server.service.replay import replay
from webhook_server.store import ledger
from webhook_server.store import outbox as ob
from webhook_server.store import transition_requests as reqs
from webhook_server.workflow import Gates, Workflow


class Down(Faults):
    """MLflow refuses every call while ``down`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def wrap(self, name, fn):
        def call(*args, **kwargs):
            if self.down and name == "set_alias":
                raise ConnectionError("MLflow is unreachable")
            return fn(*args, **kwargs)
        return call


def test_a_dead_promotion_job_fails_its_request_and_replay_finishes_the_move(svc):
    svc.policy = parse_policy({"people": {"olga": {"cli": "olga"}}, "operators": ["olga"]})
    memory, faults = MemoryRegistry({"champion": "1"}), Down()
    queue = SqlJobQueue(svc.store, backoff_s=0)
    svc.queue = queue  # replay requeues through the services' queue
    workflow = Workflow(svc.store, queue, FaultyRegistry(memory, faults), svc.policy,
                        Gates(passing, lambda m, c, k: comparison(c, k)))
    queue.on_dead("request", workflow.on_dead)
    worker = Worker(queue, {"request": workflow.handle}, poll_s=0)
    memory.ask("2")
    result = svc.intake.record(Delivery("mlflow", "tag-2", "model_version_tag.set", "{}",
                                        TransitionRequested("churn", "2", "Production", "tag")))
    rid = result.request_id
    faults.down = True  # every alias move fails: the job's attempts run out
    while worker.run_once() is not None:
        pass
    with svc.store.read() as conn:
        req = reqs.get(conn, rid)
        job, follow_up = sorted(list_jobs(conn), key=lambda j: j["id"])
        intent = ledger.intent_for(conn, rid)
        rows = ob.list_(conn, limit=100)
    alerts = [messages.text(json.loads(r["payload"])) if r["kind"] == "message"
              else r["payload"] for r in rows]
    assert (job["state"], req.state) == ("dead", "failed")
    assert req.reason.startswith("job gave up in state promoting: ConnectionError: MLflow "
                                 "is unreachable (podium replay brings it back)")
    assert (follow_up["key"], follow_up["state"]) == (f"request:{rid}:failed-1", "done")
    assert memory.tags["2"]["podium.status"] == "failed"  # written by the follow-up job
    assert memory.tags["2"]["podium.reason"].startswith("job gave up in state promoting")
    assert intent is not None and memory.aliases["champion"] == "1"
    assert any(":skull: job request:" in a for a in alerts)
    assert any('"to": "failed"' in a for a in alerts)  # the request's thread says so

    faults.down = False
    out = replay(svc, "tag-2", actor="cli:olga")  # an operator
    assert out["action"] == "requeued" and out["request"] == {"id": rid, "state": "promoting"}
    while worker.run_once() is not None:
        pass
    with svc.store.read() as conn:
        req = reqs.get(conn, rid)
        moves = [(e["from_version"], e["to_version"]) for e in ledger.entries(conn, "churn")]
    assert req.state == "promoted" and memory.aliases["champion"] == "2"
    assert moves == [("1", "2")] and memory.tags["2"]["podium.status"] == "promoted"


def test_a_request_waiting_for_a_person_is_not_failed_by_a_dead_job(svc):
    """The job's last attempt recorded awaiting_approval and then died (tags failed): the
    request still waits for its approvers."""
    svc.policy = parse_policy({})
    workflow = Workflow(svc.store, svc.queue, MemoryRegistry(), svc.policy,
                        Gates(passing, None))
    rid = svc.intake.record(Delivery("api", "d-9", "api.request", "{}", TransitionRequested(
        "churn", "9", "Production", "api"))).request_id
    with svc.store.tx() as conn:
        for a, b in (("queued", "checking"), ("checking", "comparing"),
                     ("comparing", "awaiting_approval")):
            reqs.transition(conn, rid, expect=(a,), to=b, actor="test")
        workflow.on_dead(conn, {"request_id": rid}, "ConnectionError: tags")
        assert reqs.get(conn, rid).state == "awaiting_approval"
