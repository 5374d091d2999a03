"""``GET /api/v1/requests/<id>/verify``: the decision computed again from its evidence
bundle (on disk here: no MLflow, no model)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.support.bundles import decided_on_disk
from tests.support.settings import API_TOKEN
from webhook_server.adapters.registry import Registry

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def test_a_decision_verifies_and_a_changed_score_is_tampered(client, svc, tmp_path):
    rid = decided_on_disk(svc, tmp_path / "b")
    ok = client.get(f"/api/v1/requests/{rid}/verify", headers=AUTH)
    assert ok.status_code == 200
    assert ok.get_json() | {"recorded_checks": []} == {
        "request": rid, "verified": True, "tampered": False, "differences": [],
        "bundle_uri": str(tmp_path / "b"), "bundle_sha256": ok.get_json()["bundle_sha256"],
        "recorded_checks": [], "recorded_live": None}
    frame = pd.read_parquet(tmp_path / "b" / "scores.parquet")
    frame.loc[0, "challenger"] = 0.5
    frame.to_parquet(tmp_path / "b" / "scores.parquet", index=False)
    bad = client.get(f"/api/v1/requests/{rid}/verify", headers=AUTH).get_json()
    assert (bad["verified"], bad["tampered"]) == (False, True)
    assert bad["differences"][0].startswith("tampered: scores.parquet changed")


@pytest.mark.parametrize("path,status,message", [
    ("/api/v1/requests/999/verify", 404, "no request 999"),
    ("/api/v1/requests/1/verify", 404, "request 1 has no evidence bundle"),
])
def test_verify_without_something_to_verify_is_404(client, svc, path, status, message):
    from webhook_server.intake.events import TransitionRequested
    from webhook_server.intake.sources import Delivery

    svc.registry = Registry(None)
    svc.intake.record(Delivery("api", "plain", "api.request", "{}",
                               TransitionRequested("churn", "1", "Production", "api")))
    resp = client.get(path, headers=AUTH)
    assert resp.status_code == status and resp.get_json()["error"].startswith(message)


def test_verify_without_mlflow_is_503(client):
    resp = client.get("/api/v1/requests/1/verify", headers=AUTH)
    assert resp.status_code == 503 and "MLFLOW_TRACKING_URI" in resp.get_json()["error"]

