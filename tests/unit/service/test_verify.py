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
