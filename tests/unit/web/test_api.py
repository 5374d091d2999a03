"""/api/v1: bearer token, listing, creating, replaying."""

import pytest

from tests.support.settings import API_TOKEN
from tests.support.signing import mlflow_headers, tag_set

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def create(client, doc, headers=None):
    return client.post("/api/v1/requests", json=doc, headers={**AUTH, **(headers or {})})


@pytest.mark.parametrize("headers,message", [
    ({}, "missing bearer token"),
    ({"Authorization": "Basic abc"}, "missing bearer token"),
    ({"Authorization": "Bearer wrong"}, "invalid bearer token"),
])
def test_requests_without_the_right_token_get_401(client, headers, message):
    resp = client.get("/api/v1/requests", headers=headers)
    assert resp.status_code == 401 and resp.json == {"error": message}


def test_the_api_is_closed_when_no_token_is_configured(svc):
    from webhook_server.web.app import create_app

    app = create_app(svc.settings.replace(api_token=None), services=svc)
    resp = app.test_client().get("/api/v1/requests", headers=AUTH)
    assert resp.status_code == 401 and "PODIUM_API_TOKEN is not set" in resp.json["error"]


def test_create_then_list_and_show_a_request(client):
    resp = create(client, {"model": "churn", "version": "4", "target": "production",
                           "comment": "weekly retrain"})
    assert resp.status_code == 201
    request_id = resp.json["request_id"]
    listed = client.get("/api/v1/requests?model=churn", headers=AUTH).json["requests"]
    assert [(r["id"], r["target"], r["origin"], r["state"]) for r in listed] == \
        [(request_id, "Production", "api", "queued")]
    shown = client.get(f"/api/v1/requests/{request_id}", headers=AUTH).json
    assert shown["comment"] == "weekly retrain"
    assert [h["to"] for h in shown["history"]] == ["queued"]
    assert client.get("/api/v1/requests?model=other", headers=AUTH).json["requests"] == []


def test_an_idempotency_key_makes_a_retried_create_harmless(client):
    doc = {"model": "churn", "version": "4", "target": "Staging"}
    first = create(client, doc, {"Idempotency-Key": "k-1"})
    second = create(client, doc, {"Idempotency-Key": "k-1"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json["request_id"] == first.json["request_id"]
    assert len(client.get("/api/v1/requests", headers=AUTH).json["requests"]) == 1


def test_a_second_create_for_an_open_request_returns_that_request(client):
    doc = {"model": "churn", "version": "4", "target": "Staging"}
    first = create(client, doc).json
    second = create(client, {**doc, "target": "staging"}).json
    assert second["request_id"] == first["request_id"] and second["already_open"] is True
    assert second["delivery"] != first["delivery"] and not second["duplicate"]
    assert second["detail"] == f"request {first['request_id']} is already open for this api request"
    assert len(client.get("/api/v1/requests", headers=AUTH).json["requests"]) == 1


@pytest.mark.parametrize("doc,status,message", [
    ({"model": "churn", "version": "4", "target": "Prod"}, 422, "invalid target 'Prod'"),
    ({"model": "churn", "target": "Staging"}, 422, "missing field 'version'"),
    ({"model": "churn", "version": "v4", "target": "Staging"}, 422, "version number"),
])
def test_invalid_creates_get_422_and_store_nothing(client, doc, status, message):
    resp = create(client, doc)
    assert resp.status_code == status and message in resp.json["error"]
    assert client.get("/api/v1/requests", headers=AUTH).json["requests"] == []


def test_malformed_json_gets_400(client):
    resp = client.post("/api/v1/requests", data=b"{oops", headers={
        **AUTH, "Content-Type": "application/json"})
    assert resp.status_code == 400 and "malformed JSON" in resp.json["error"]


def test_unknown_request_gets_404(client):
    resp = client.get("/api/v1/requests/999", headers=AUTH)
    assert resp.status_code == 404 and resp.json == {"error": "no request 999"}


def test_bad_limit_gets_400(client):
    assert client.get("/api/v1/requests?limit=0", headers=AUTH).status_code == 400


@pytest.fixture
def operator(svc):
    """The test token (named "default") is olga's, and olga is an operator: replaying is
    for operators (a token naming no person gets 403, tests/unit/workflow/test_side_doors)."""
    from podium_policy.policy import parse_policy

    svc.policy = parse_policy({"people": {"olga": {"api": "default"}}, "operators": ["olga"]})


@pytest.mark.usefixtures("operator")
def test_replay_of_an_unknown_delivery_gets_404(client):
    resp = client.post("/api/v1/deliveries/nope/replay", headers=AUTH)
    assert resp.status_code == 404 and "no stored delivery 'nope'" in resp.json["error"]


@pytest.mark.usefixtures("operator")
def test_replay_requeues_the_dead_job_of_a_delivery(client, svc):
    body = tag_set()
    client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body, delivery_id="d-9"))
    job = svc.queue.claim("w")
    svc.queue.fail(job, "MLflow down", permanent=True)
    resp = client.post("/api/v1/deliveries/d-9/replay", headers=AUTH)
    assert resp.status_code == 200
    assert resp.json == {"delivery": 1, "action": "requeued", "jobs": ["request:1"]}
    assert svc.queue.claim("w").key == "request:1"


@pytest.mark.usefixtures("operator")
def test_replay_re_runs_a_delivery_without_dead_jobs_as_a_new_request(client, svc):
    from webhook_server.store import states
    from webhook_server.store import transition_requests as reqs

    body = tag_set()
    client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body, delivery_id="d-5"))
    with svc.store.tx() as conn:
        reqs.transition(conn, 1, expect=states.OPEN, to=states.FAILED, actor="test")
    resp = client.post("/api/v1/deliveries/d-5/replay", headers=AUTH)
    assert resp.json["action"] == "re-run"
    new = resp.json["new_delivery"]
    assert new["request_id"] == 2 and new["delivery"] == 2
    assert client.get("/api/v1/requests/2", headers=AUTH).json["state"] == "queued"


@pytest.mark.usefixtures("operator")
def test_replaying_the_delivery_of_an_open_request_links_to_it(client, svc):
    body = tag_set()
    client.post("/webhooks/mlflow", data=body, headers=mlflow_headers(body, delivery_id="d-5"))
    new = client.post("/api/v1/deliveries/d-5/replay", headers=AUTH).json["new_delivery"]
    assert (new["request_id"], new["already_open"]) == (1, True)
    assert new["detail"] == "request 1 is already open for this tag"
    assert [r["id"] for r in client.get("/api/v1/requests", headers=AUTH).json["requests"]] \
        == [1]
