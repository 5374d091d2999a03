"""The doors around the gate, against a real `mlflow server` with real webhooks: a champion
moved by hand in MLflow is put back, and model files overwritten in MLflow after the checks
are never promoted (MLflow lets the owner of a logged model write its artifacts again)."""

import pytest
import requests

from tests.support.podium_runs import CHECKS, api, cli, new_version, request, tags_when
from tests.support.settings import API_TOKEN, make_settings
from tests.support.waiting import wait_for

MLFLOW_SEED = "churn-wf"  # the trained versions of tests/support/workflow_versions.py
pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="module")
def trained(versions):
    """churn-wf v1 (modest) and its better successor (v3 of the session's trained versions:
    more data, a better configuration), registered on this module's server."""
    return {"v1": versions["v1"], "v2": versions["v3"]}  # v2 wins


def judge_lines(tmp_path) -> str:
    """The policy's pinned holdout: 2,000 customers no version trained on."""
    from model_tests.holdout import sha256_of
    from training.data import generate

    path = tmp_path / "judge.csv"
    generate(2000, seed=4242)[0].to_csv(path, index=False)
    return f"  holdout: {path}\n  holdout_sha256: {sha256_of(path)}\n"


def approve(server, request_id):
    """Approve as the API token's person, on the evidence the API shows now."""
    shown = wait_for(lambda: (r := api(server, f"/requests/{request_id}"))["state"]
                     == "awaiting_approval" and r, 240, f"request {request_id} to wait")
    resp = requests.post(f"{server.url}/api/v1/requests/{request_id}/approve", headers=AUTH,
                         json={"evidence": shown["evidence_sha256"]}, timeout=30)
    assert resp.status_code == 200, resp.text
    return shown


def test_a_hand_moved_champion_is_put_back_and_overwritten_files_are_not_promoted(
        podium, podium_env, trained, mlflow_client, tmp_path):
    from webhook_server.service.services import build
    from webhook_server.store import ledger

    policy = tmp_path / "podium.yaml"
    policy.write_text("people:\n  ana: {api: default}\n" + CHECKS + judge_lines(tmp_path)
                      + "  approval: {targets: [Production], approvers: [ana]}\n")
    env = {**podium_env, "PODIUM_POLICY": str(policy), "PODIUM_RECONCILE_INTERVAL": "5"}
    server = podium(**env)
    hook = cli(env, "webhook", "register", "--url", f"{server.url}/webhooks/mlflow",
               "--name", "podium-doors")
    assert hook.returncode == 0, hook.stderr
    m, v1, v2 = "churn-wf", trained["v1"], trained["v2"]

    first = request(mlflow_client, server, m, v1)
    shown = approve(server, first)
    assert len(shown["model_sha256"]) == 64
    tags = tags_when(mlflow_client, m, v1, "promoted")
    assert tags["podium.model_sha256"] == shown["model_sha256"]

    # someone with MLflow access makes a version that nothing checked the champion
    stray = new_version(mlflow_client, m)
    mlflow_client.set_registered_model_alias(m, "champion", stray)
    wait_for(lambda: mlflow_client.get_model_version_by_alias(m, "champion").version == v1,
             30, "the champion put back by Podium")

    # v2 wins and waits for a person; meanwhile its files are overwritten in MLflow
    second = request(mlflow_client, server, m, v2)
    shown = wait_for(lambda: (r := api(server, f"/requests/{second}"))["state"]
                     == "awaiting_approval" and r, 240, "v2 to wait for approval")
    source = mlflow_client.get_model_version(m, v2).source
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
    mlflow_client.log_model_artifacts(source.split("/")[-1], str(evil))
    approve(server, second)
    ended = wait_for(lambda: (r := api(server, f"/requests/{second}"))["state"]
                     in ("promoted", "failed") and r, 120, "v2's request to end")
    assert ended["state"] == "failed", ended
    assert "changed after they were checked" in ended["reason"]
    assert mlflow_client.get_model_version_by_alias(m, "champion").version == v1

    svc = build(make_settings(env["PODIUM_DATABASE_URL"]))
    with svc.store.read() as conn:
        rows = [(e["kind"], e["to_version"]) for e in ledger.entries(conn, m)]
    svc.close()
    assert rows == [("promote", v1), ("external", stray), ("reverted", v1)]

    # `podium request` records who Podium authenticated (the OS account), not a tag
    from webhook_server.core.identity import cli_actor

    asked = cli(env, "request", m, stray)
    assert asked.returncode == 0, asked.stderr
    assert f"as {cli_actor()})" in asked.stdout
    rows = [r for r in api(server, f"/requests?model={m}")["requests"]
            if r["version"] == stray]
    assert len(rows) == 1  # the tag's webhook joined the request, made no second one
    assert rows[0]["requested_by"] == cli_actor() and rows[0]["requesters"] == [cli_actor()]
