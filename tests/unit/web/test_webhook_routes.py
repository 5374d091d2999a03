"""POST /webhooks/mlflow and /webhooks/databricks: every kind of bad input, over HTTP."""

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from tests.support.servers import serving
from tests.support.signing import (
    databricks_body,
    databricks_headers,
    mlflow_body,
    mlflow_headers,
    tag_set,
)
from webhook_server.intake.sources.mlflow import EXAMPLES
from webhook_server.store import states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.schema import deliveries, jobs
from webhook_server.store.schema import requests as requests_t


def rows(svc, table=deliveries):
    with svc.store.tx() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def post(client, body, headers, path="/webhooks/mlflow"):
    return client.post(path, data=body, headers=headers)


def test_a_signed_transition_request_is_stored_and_acknowledged(client, svc):
    body = tag_set()
    resp = post(client, body, mlflow_headers(body, delivery_id="abc"))
    assert resp.status_code == 200
    assert resp.json["status"] == "accepted" and resp.json["request_id"] == 1
    assert (rows(svc), rows(svc, requests_t), rows(svc, jobs)) == (1, 1, 1)


@pytest.mark.parametrize("mutate,message", [
    (lambda h: h.pop("X-MLflow-Signature"), "missing header X-MLflow-Signature"),
    (lambda h: h.update({"X-MLflow-Signature": "v1,AAAA"}), "no matching signature"),
    (lambda h: h.update({"X-MLflow-Timestamp": "1"}), "timestamp too old"),
    (lambda h: h.update({"X-MLflow-Timestamp": "99999999999"}), "too far in the future"),
])
def test_unverifiable_deliveries_get_401_and_store_nothing(client, svc, mutate, message):
    body = tag_set()
    headers = mlflow_headers(body)
    mutate(headers)
    resp = post(client, body, headers)
    assert resp.status_code == 401 and message in resp.json["error"]
    assert rows(svc) == 0


def test_a_delivery_signed_with_the_wrong_secret_is_refused(client, svc):
    body = tag_set()
    resp = post(client, body, mlflow_headers(body, secret="guess"))
    assert resp.status_code == 401 and resp.json == {"error": "no matching signature"}


def test_rejected_signatures_are_counted_on_metrics(client):
    body = tag_set()
    post(client, body, mlflow_headers(body, secret="guess"))
    text = client.get("/metrics").data.decode()
    assert 'podium_rejected_signatures_total{reason="mismatch",source="mlflow"} 1.0' in text


def test_wrong_content_type_gets_415(client, svc):
    body = tag_set()
    headers = dict(mlflow_headers(body), **{"Content-Type": "text/plain"})
    resp = post(client, body, headers)
    assert resp.status_code == 415 and "application/json" in resp.json["error"]
    assert rows(svc) == 0


def test_a_body_over_one_mebibyte_gets_413(client, svc):
    body = mlflow_body("model_version_tag.set", {"name": "churn", "version": "1",
                                                 "key": "note", "value": "x" * (1 << 20)})
    resp = post(client, body, mlflow_headers(body))
    assert resp.status_code == 413 and "body over 1048576 bytes" in resp.json["error"]
    assert rows(svc) == 0


@pytest.mark.parametrize("body,status,message", [
    (b"", 400, "empty body"),
    (b'{"entity": "model_version_tag", "act', 400, "malformed JSON"),
    (b'{"entity": "model_version_tag", "action": "set"}', 422, "'data'"),
])
def test_signed_but_unusable_bodies_are_kept_as_invalid_with_a_clear_error(
        client, svc, body, status, message):
    resp = post(client, body, mlflow_headers(body, delivery_id="bad-1"))
    assert resp.status_code == status and message in resp.json["error"]
    with svc.store.tx() as conn:
        row = conn.execute(select(deliveries)).mappings().one()
    assert (row["delivery_id"], row["status"]) == ("bad-1", "invalid")
    assert rows(svc, requests_t) == 0


def test_an_invalid_target_is_acknowledged_and_stored_as_a_rejected_request(client, svc):
    body = tag_set(value="Prodution")
    resp = post(client, body, mlflow_headers(body))
    assert resp.status_code == 200
    assert "invalid target 'Prodution'" in resp.json["detail"]
    with svc.store.tx() as conn:
        assert conn.execute(select(requests_t.c.state)).scalar_one() == "rejected"


def test_unknown_events_are_stored_as_ignored_and_answered_200(client, svc):
    body = mlflow_body("prompt.created", {"name": "greeting"})
    resp = post(client, body, mlflow_headers(body))
    assert resp.status_code == 200 and resp.json["status"] == "ignored"
    assert rows(svc) == 1 and rows(svc, requests_t) == 0


def test_mlflow_test_webhook_payload_is_recorded_as_a_test_delivery(client, svc):
    body = mlflow_body("model_version_tag.set", EXAMPLES["model_version_tag.set"])
    resp = post(client, body, mlflow_headers(body))
    assert resp.status_code == 200 and resp.json["status"] == "test"
    assert rows(svc, requests_t) == 0


def test_a_repeated_delivery_answers_200_and_keeps_one_row(client, svc):
    body = tag_set()
    headers = mlflow_headers(body, delivery_id="same")
    first, second = post(client, body, headers), post(client, body, headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json["duplicate"] is True and second.json["request_id"] == 1
    assert (rows(svc), rows(svc, requests_t), rows(svc, jobs)) == (1, 1, 1)


def test_an_alias_delivery_is_judged_as_of_the_time_mlflow_signed_it(client, svc):
    """MLflow's retry of the alias webhook of Podium's own shadow-alias move keeps the time
    it was first sent: sent while v3's request waited on the alias, it asks nothing after
    the request ended; the alias set again after the end is a new request."""
    with svc.store.tx() as conn:
        rid = reqs.create(conn, model="churn", version="3", target="Production",
                          raw_target="Production", origin="tag", state=states.QUEUED)
        for to in (states.SHADOWING, states.REJECTED):
            reqs.transition(conn, rid, expect=states.OPEN, to=to, actor="policy")
    body = mlflow_body("model_version_alias.created",
                       {"name": "churn", "alias": "challenger", "version": "3"})
    now = int(time.time())
    late = post(client, body, mlflow_headers(body, delivery_id="retried", timestamp=now - 60))
    assert late.status_code == 200 and late.json["request_id"] == rid
    assert "shadow alias" in late.json["detail"] and rows(svc, requests_t) == 1
    again = post(client, body, mlflow_headers(body, delivery_id="again", timestamp=now + 60))
    assert again.json["request_id"] == rid + 1 and rows(svc, requests_t) == 2


def test_fifty_concurrent_copies_of_one_delivery_store_one_row(app, svc):
    body = tag_set()
    headers = mlflow_headers(body, delivery_id="stampede")
    with serving(app) as url, ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(lambda _: requests.post(url + "/webhooks/mlflow", data=body,
                                                      headers=headers, timeout=30).status_code,
                              range(50)))
    assert codes == [200] * 50
    assert (rows(svc), rows(svc, requests_t), rows(svc, jobs)) == (1, 1, 1)
    with svc.store.tx() as conn:
        assert conn.execute(select(deliveries.c.duplicates)).scalar_one() == 49


def test_store_unavailable_answers_503_then_the_retry_is_stored(tmp_path):
    """A writer holding the SQLite lock makes Podium answer 503; MLflow's retry lands."""
    from tests.support.settings import make_settings
    from webhook_server.service.services import build
    from webhook_server.web.app import create_app

    path = tmp_path / "podium.db"
    svc = build(make_settings(f"sqlite:///{path}"))
    svc.store.migrate()
    app = create_app(svc.settings, services=svc)
    client = app.test_client()
    from sqlalchemy import event

    @event.listens_for(svc.store.engine, "connect")
    def _short_timeout(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA busy_timeout=50")

    svc.store.engine.dispose()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    body = tag_set()
    headers = mlflow_headers(body, delivery_id="retry-me")
    resp = post(client, body, headers)
    assert resp.status_code == 503 and "retry" in resp.json["error"]
    blocker.execute("ROLLBACK")
    blocker.close()
    resp = post(client, body, headers)
    assert resp.status_code == 200 and resp.json["duplicate"] is False
    assert rows(svc) == 1
    svc.close()


def test_databricks_transition_request_is_stored(client, svc):
    body = databricks_body()
    resp = post(client, body, databricks_headers(body), path="/webhooks/databricks")
    assert resp.status_code == 200 and resp.json["request_id"] == 1
    again = post(client, body, databricks_headers(body), path="/webhooks/databricks")
    assert again.json["duplicate"] is True and rows(svc) == 1


def test_databricks_bad_signature_gets_401(client, svc):
    body = databricks_body()
    resp = post(client, body, databricks_headers(body, secret="x"), path="/webhooks/databricks")
    assert resp.status_code == 401 and rows(svc) == 0


def test_unknown_route_and_method_answer_json(client):
    assert client.get("/webhooks/mlflow").status_code == 405
    resp = client.post("/webhooks/nowhere", data=b"{}")
    assert resp.status_code == 404 and "error" in resp.json
