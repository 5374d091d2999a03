"""The store records, the room where a change happens tells: ``transition_requests`` writes
rows of requests and history only; ``intake.tell`` adds the outbox rows in the same
transaction, with the keys and payloads the senders read."""

import json

import pytest
from sqlalchemy import select

from webhook_server.intake import tell
from webhook_server.store import transition_requests as reqs
from webhook_server.store.schema import outbox

FIELDS = dict(model="churn", version="3", target="Production", raw_target="production",
              origin="api")


def _notes(svc) -> list[tuple[str, str, str, dict]]:
    with svc.store.read() as conn:
        rows = conn.execute(select(outbox).order_by(outbox.c.id)).mappings().all()
    return [(r["key"], r["channel"], r["kind"], json.loads(r["payload"])) for r in rows]


def test_the_store_alone_records_and_tells_nobody(svc):
    with svc.store.tx() as conn:
        rid = reqs.create(conn, state="queued", **FIELDS)
        moved = reqs.transition(conn, rid, expect=("queued",), to="rejected", actor="x",
                                reason="no")
        reqs.note(conn, rid, "x", "a line")
        assert reqs.transition(conn, rid, expect=("queued",), to="checking", actor="x") is None
    assert moved.from_state == "queued" and moved.to_state == "rejected"
    assert moved.reason == "no" and moved.event_id > 0
    assert _notes(svc) == []


def test_tell_writes_each_step_and_the_decision(svc):
    with svc.store.tx() as conn:
        rid = tell.create(conn, state="queued", **FIELDS)
        assert tell.transition(conn, rid, expect=("queued",), to="checking", actor="worker")
        assert not tell.transition(conn, rid, expect=("queued",), to="failed", actor="w")
        tell.note(conn, rid, "slack:U1", "approved by slack:U1 (1 of 2)")
        assert tell.transition(conn, rid, expect=("checking",), to="rejected", actor="policy",
                               reason="checks failed")
    with svc.store.read() as conn:
        events = [e.id for e in reqs.history(conn, rid)]
    assert _notes(svc) == [
        (f"request:{rid}:created", "slack", "step",
         {"to": "queued", "actor": "intake", "reason": None}),
        (f"request:{rid}:event:{events[1]}", "slack", "step",
         {"from": "queued", "to": "checking", "actor": "worker", "reason": None,
          "checks": None, "comparison": None}),
        (f"request:{rid}:event:{events[2]}", "slack", "step",
         {"text": "approved by slack:U1 (1 of 2)", "actor": "slack:U1"}),
        (f"request:{rid}:event:{events[3]}", "slack", "step",
         {"from": "checking", "to": "rejected", "actor": "policy", "reason": "checks failed",
          "checks": None, "comparison": None}),
        (f"gitlab:request:{rid}:decision", "gitlab", "decision", {"state": "rejected"}),
    ]


def test_a_step_that_rolls_back_tells_nobody(svc):
    with pytest.raises(RuntimeError), svc.store.tx() as conn:
        rid = tell.create(conn, state="queued", **FIELDS)
        tell.transition(conn, rid, expect=("queued",), to="cancelled", actor="intake")
        raise RuntimeError("the transaction fails after the transition")
    assert _notes(svc) == []
