"""The store hands out ``Request`` and ``RequestEvent``: one field per column, and the one
JSON shape of a request that the API and the CLI print."""

from dataclasses import FrozenInstanceError, fields

import pytest

from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Request, RequestEvent
from webhook_server.store.schema import request_events, requests


def test_the_records_have_one_field_per_column():
    # the same names once each; a column added later is a field with a default, after the
    # fields without one (a dataclass rule), so the order may differ from the table's
    assert sorted(f.name for f in fields(Request)) == sorted(requests.c.keys())
    assert len(fields(Request)) == len(requests.c)
    assert [f.name for f in fields(RequestEvent)] == list(request_events.c.keys())


def _stored(svc) -> int:
    with svc.store.tx() as conn:
        rid = reqs.create(conn, model="churn", version="3", target="Production",
                          raw_target="production", origin="api", state="queued",
                          requested_by="api:ci", comment="weekly retrain")
        reqs.transition(conn, rid, expect=("queued",), to="checking", actor="worker")
        reqs.note(conn, rid, "job:request:1", "a note")
        reqs.save_evidence(conn, rid, {"checks": [{"name": "auc", "passed": True}]})
    return rid


def test_a_stored_request_reads_back_typed_and_frozen(svc):
    rid = _stored(svc)
    with svc.store.read() as conn:
        req = reqs.get(conn, rid)
        history = reqs.history(conn, rid)
        into = reqs.last_event_into(conn, rid, "checking")
        assert reqs.list_(conn, model="churn") == reqs.open_for_model(conn, "churn") == [req]
    with svc.store.tx() as conn:
        assert reqs.lock(conn, rid) == req
    assert (req.id, req.model, req.version, req.target, req.raw_target, req.origin,
            req.state, req.requested_by, req.comment, req.decided_by) == (
        rid, "churn", "3", "Production", "production", "api", "checking", "api:ci",
        "weekly retrain", None)
    assert req.created_at.tzinfo is not None and req.updated_at >= req.created_at
    assert req.evidence_json() == {"checks": [{"name": "auc", "passed": True}]}
    assert [(h.from_state, h.to_state, h.actor, h.note) for h in history] == [
        (None, "queued", "intake", None), ("queued", "checking", "worker", None),
        ("checking", "checking", "job:request:1", "a note")]
    assert into == history[1]
    with pytest.raises(FrozenInstanceError):
        req.state = "promoted"


def test_no_evidence_reads_as_an_empty_dict(svc):
    with svc.store.tx() as conn:
        rid = reqs.create(conn, model="churn", version="3", target=None, raw_target="Prod",
                          origin="tag", state="rejected", reason="invalid target")
        req = reqs.get(conn, rid)
    assert (req.evidence, req.evidence_json(), req.target) == (None, {}, None)


def _iso(value):
    return value.isoformat() if value is not None else None


def test_as_json_is_the_shape_the_api_and_the_cli_print(svc):
    """The same keys and formats as before the store returned records."""
    rid = _stored(svc)
    with svc.store.read() as conn:
        req, history = reqs.get(conn, rid), reqs.history(conn, rid)
    expected = {"id": rid, "model": "churn", "version": "3", "target": "Production",
                "raw_target": "production", "origin": "api", "state": "checking",
                "reason": None, "requested_by": "api:ci", "decided_by": None,
                "comment": "weekly retrain",
                "requesters": ["api:ci"],  # authenticated by Podium: requested_by only
                "model_sha256": None,  # no files judged yet
                "bundle_uri": None, "bundle_sha256": None,  # no evidence bundle yet
                "created_at": _iso(req.created_at), "updated_at": _iso(req.updated_at)}
    assert req.as_json() == expected and list(req.as_json()) == list(expected)
    out = req.as_json(history)
    assert list(out) == [*expected, "history", "stages"]  # stages: issue 18's timings
    took = [(b.at - a.at).total_seconds()
            for a, b in zip(history, history[1:], strict=False)] + [None]
    assert out["history"] == [{"at": _iso(h.at), "from": h.from_state, "to": h.to_state,
                               "actor": h.actor, "note": h.note,
                               "seconds": None if t is None else round(t, 3)}
                              for h, t in zip(history, took, strict=True)]
    assert [list(h) for h in out["history"]] == [
        ["at", "from", "to", "actor", "note", "seconds"]] * 3
    assert req.as_json([]) == {**expected, "history": [], "stages": {}}
