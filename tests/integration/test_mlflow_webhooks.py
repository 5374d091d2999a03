"""Real MLflow server -> real webhook deliveries -> podium serve -> store and tags back."""

import os
import subprocess

import pytest

from tests.support.podium_runs import api, new_version
from tests.support.waiting import wait_for
from webhook_server.dev.processes import bin_path

pytestmark = pytest.mark.integration


def podium_cli(env, *args):
    full = {**{k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "MLFLOW_"))},
            **env}
    return subprocess.run([bin_path("podium"), *args], env=full, capture_output=True, text=True,
                          timeout=120)


def requests_for(podium, model, version=None):
    rows = api(podium, f"/requests?model={model}")["requests"]
    return [r for r in rows if version is None or r["version"] == version]


def version_tags(client, model, version):
    return client.get_model_version(model, version).tags


def test_registry_events_become_stored_requests(podium, podium_env, mlflow_client, model_name):
    server = podium(args=("--no-worker",))  # requests stay as intake stored them
    registered = podium_cli(podium_env, "webhook", "register", "--url",
                            f"{server.url}/webhooks/mlflow", "--name", f"podium-{model_name}",
                            "--test")
    assert registered.returncode == 0, registered.stderr
    assert "test delivery: ok (HTTP 200)" in registered.stdout

    v1 = new_version(mlflow_client, model_name)
    mlflow_client.set_model_version_tag(model_name, v1, "transition_request", "production")
    (req,) = wait_for(lambda: requests_for(server, model_name, v1), what="tag request")
    assert (req["target"], req["origin"], req["state"]) == ("Production", "tag", "queued")

    v2 = new_version(mlflow_client, model_name)
    mlflow_client.set_registered_model_alias(model_name, "challenger", v2)
    (alias_req,) = wait_for(lambda: requests_for(server, model_name, v2), what="alias request")
    assert (alias_req["target"], alias_req["origin"]) == ("Production", "alias")

    mlflow_client.delete_model_version_tag(model_name, v1, "transition_request")
    cancelled = wait_for(lambda: [r for r in requests_for(server, model_name, v1)
                                  if r["state"] == "cancelled"], what="cancellation")
    assert cancelled[0]["reason"] == "transition_request tag deleted"

    mlflow_client.set_model_version_tag(model_name, v2, "transition_request", "Prod")
    rejected = wait_for(lambda: [r for r in requests_for(server, model_name, v2)
                                 if r["state"] == "rejected"], what="rejected request")
    assert "invalid target 'Prod'" in rejected[0]["reason"]
    # the newer (invalid) request does not supersede the valid alias request
    assert api(server, f"/requests/{alias_req['id']}")["state"] == "queued"


def test_reconciler_recovers_a_request_tagged_while_podium_was_down(
        podium, podium_env, mlflow_client, model_name):
    v1 = new_version(mlflow_client, model_name)
    mlflow_client.set_model_version_tag(model_name, v1, "transition_request", "Staging")
    server = podium()  # the scheduler reconciles once at start
    (req,) = wait_for(lambda: requests_for(server, model_name, v1), what="reconciled request")
    assert (req["target"], req["requested_by"]) == ("Staging", "reconciler")
    again = podium_cli(podium_env, "reconcile", "--json")
    assert again.returncode == 0, again.stderr
    assert len(requests_for(server, model_name, v1)) == 1
    # the worker ran the workflow: a placeholder artifact fails the checks, on the version
    tags = wait_for(lambda: (t := version_tags(mlflow_client, model_name, v1))
                    .get("podium.status") == "rejected" and t, timeout=180,
                    what="rejection on v1")
    assert tags["podium.request_id"] == str(req["id"]) and tags["podium.check.loads"] == "fail"


def test_a_request_for_a_version_that_does_not_exist_ends_failed(podium, podium_env,
                                                                 model_name, mlflow_client):
    import requests as http

    from tests.support.settings import API_TOKEN

    server = podium()
    new_version(mlflow_client, model_name)
    resp = http.post(server.url + "/api/v1/requests",
                     json={"model": model_name, "version": "99", "target": "Production"},
                     headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
    assert resp.status_code == 201
    failed = wait_for(lambda: [r for r in requests_for(server, model_name)
                               if r["state"] == "failed"], what="failed request")
    assert "version 99 does not exist" in failed[0]["reason"]
