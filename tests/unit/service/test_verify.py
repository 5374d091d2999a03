"""``podium verify`` against the request row: a bundle that verifies on its own still
differs when the request records another decision, holdout or model files."""

from __future__ import annotations

from sqlalchemy import update

from tests.support.bundles import decided_on_disk
from tests.support.settings import make_settings
from webhook_server.service.evidence import verify
from webhook_server.store.schema import requests


def test_a_request_whose_recorded_decision_is_not_its_bundles_verdict_differs(
        make_svc, sqlite_url, tmp_path):
    svc = make_svc(make_settings(sqlite_url))
    rid = decided_on_disk(svc, tmp_path / "b")
    assert verify(svc.store, svc.registry, rid).verified
    with svc.store.tx() as conn:
        conn.execute(update(requests).where(requests.c.id == rid).values(
            state="rejected", model_sha256="f" * 64))
    result = verify(svc.store, svc.registry, rid)
    assert (result.verified, result.tampered) == (False, False)
    assert result.differences == [
        "model files: the request records ffffffffffff, the bundle cdcdcdcdcdcd",
        "decision: the request is rejected by the policy, the bundle's verdict is 'promote'"]
    assert result.text().splitlines()[0] == f"differences: request {rid}"


def _live(svc, rid, state, decision):
    """The request went through shadowing: its live look decided ``decision``."""
    from webhook_server.store import transition_requests as reqs

    with svc.store.tx() as conn:
        evidence = reqs.get(conn, rid).evidence_json()
        conn.execute(update(requests).where(requests.c.id == rid).values(state=state))
        reqs.save_evidence(conn, rid, {**evidence, "live": {
            "alias": "challenger", "pairs": 1200, "min_pairs": 1000, "verdict": "not better",
            "decision": decision, "looked_at": "2026-06-02T09:00:00+00:00"}})


def test_a_holdout_pass_rejected_on_live_outcomes_verifies_with_the_live_look_recorded(
        make_svc, sqlite_url, tmp_path):
    svc = make_svc(make_settings(sqlite_url))
    rid = decided_on_disk(svc, tmp_path / "b")
    _live(svc, rid, "rejected", "reject")
    result = verify(svc.store, svc.registry, rid)
    assert result.verified, result.differences
    assert result.recorded_live["decision"] == "reject"
    assert result.as_json()["recorded_live"]["pairs"] == 1200
    assert "live evidence kept as recorded (1200 labelled pairs in the store, decision " \
           "reject)" in result.text()


def test_a_state_the_live_look_did_not_decide_differs(make_svc, sqlite_url, tmp_path):
    svc = make_svc(make_settings(sqlite_url))
    rid = decided_on_disk(svc, tmp_path / "b")
    _live(svc, rid, "inconclusive", "reject")
    result = verify(svc.store, svc.registry, rid)
    assert result.differences == [
        "decision: the request is inconclusive by the policy, the bundle's verdict is "
        "'promote' and the live evidence's 'reject'"]
