"""No input breaks a route: over-long numeric headers, bodies nested 100k deep, 5,000-digit
versions, wrong JSON types and over-long strings get a 4xx with a precise message (never a
500, on SQLite and PostgreSQL alike); refused deliveries are counted under a fixed set of
reasons, never under text from the request."""

import json
import logging
from urllib.parse import urlencode

import pytest
from flask import jsonify, request
from sqlalchemy import select

from tests.support.settings import make_settings
from tests.support.signing import (
    databricks_body,
    databricks_headers,
    mlflow_body,
    mlflow_headers,
    tag_set,
)
from webhook_server.dev.fakes.slack import click_payload, sign
from webhook_server.intake.sources import REJECTION_REASONS
from webhook_server.intake.sources.databricks import DatabricksSource
from webhook_server.intake.sources.mlflow import UNSIGNED_BANNER
from webhook_server.service.services import build
from webhook_server.store import transition_requests as reqs
from webhook_server.store.counters import incr
from webhook_server.store.schema import counters, deliveries
from webhook_server.web.app import create_app
from webhook_server.web.routes import health

SLACK_SECRET = "hostile-signing-secret"
TEAM = "T0PODIUM"
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def hsvc(db_url, make_svc):
    svc = make_svc(make_settings(db_url, slack_signing_secret=SLACK_SECRET, slack_team_id=TEAM))
    return svc


@pytest.fixture
def hclient(hsvc):
    return create_app(hsvc.settings, services=hsvc).test_client()


def post_mlflow(client, body: bytes, **header_changes):
    headers = {**mlflow_headers(body), **header_changes}
    return client.post("/webhooks/mlflow", data=body, headers=headers)


def post_slack(client, body: str, headers=None):
    return client.post("/slack/interactions", data=body,
                       headers=headers or sign(SLACK_SECRET, body))


def stored(svc) -> list[dict]:
    with svc.store.read() as conn:
        return [dict(r) for r in conn.execute(select(deliveries)).mappings()]


# --- headers -----------------------------------------------------------------------------

@pytest.mark.parametrize("stamp", ["9" * 21, "9" * 5000, "1" * 100_000])
def test_an_overlong_mlflow_timestamp_is_a_precise_401(hclient, hsvc, stamp):
    body = tag_set()
    resp = post_mlflow(hclient, body, **{"X-MLflow-Timestamp": stamp})
    assert resp.status_code == 401
    assert resp.json == {"error": "X-MLflow-Timestamp is not a unix time: longer than 20 "
                                  "digits"}
    assert stored(hsvc) == []


def test_an_overlong_slack_timestamp_is_a_precise_401(hclient):
    body = urlencode({"payload": json.dumps(click_payload(1, "U0ALICE"))})
    headers = {**sign(SLACK_SECRET, body), "X-Slack-Request-Timestamp": "9" * 5000}
    resp = post_slack(hclient, body, headers)
    assert resp.status_code == 401
    assert resp.json == {"error": "X-Slack-Request-Timestamp is not a Unix timestamp: longer "
                                  "than 20 digits"}


@pytest.mark.parametrize("header, value, message", [
    ("X-MLflow-Delivery-Id", "d" * 129, "X-MLflow-Delivery-Id is not a delivery id"),
    ("X-MLflow-Delivery-Id", "d\x01", "X-MLflow-Delivery-Id is not a delivery id"),
    ("X-MLflow-Signature", "v1,x " * 1000, "X-MLflow-Signature is longer than 4096"),
])
def test_overlong_or_odd_mlflow_headers_are_401(hclient, header, value, message):
    body = tag_set()
    resp = post_mlflow(hclient, body, **{header: value})
    assert resp.status_code == 401 and message in resp.json["error"]


def test_an_odd_databricks_signature_is_a_precise_401(hclient):
    body = databricks_body()
    for value in ("ab" * 5000, "é" * 64):
        resp = hclient.post("/webhooks/databricks", data=body,
                            headers={**databricks_headers(body),
                                     "X-Databricks-Signature": value})
        assert resp.status_code == 401
        assert "is not a hex HMAC-SHA256" in resp.json["error"]


# --- bodies ------------------------------------------------------------------------------

def test_a_signed_mlflow_body_nested_100k_deep_is_400_and_kept_as_invalid(hclient, hsvc):
    resp = post_mlflow(hclient, DEEP)
    assert resp.status_code == 400 and resp.json["error"] == "JSON nested deeper than 32"
    (row,) = stored(hsvc)
    assert (row["status"], row["detail"]) == ("invalid", "JSON nested deeper than 32")


def test_a_signed_databricks_body_nested_100k_deep_is_400(hclient):
    resp = hclient.post("/webhooks/databricks", data=DEEP, headers=databricks_headers(DEEP))
    assert (resp.status_code, resp.json["error"]) == (400, "JSON nested deeper than 32")


def test_a_signed_slack_payload_nested_100k_deep_is_400(hclient):
    body = urlencode({"payload": "[" * 100_000 + "]" * 100_000})
    resp = post_slack(hclient, body)
    assert resp.status_code == 400
    assert resp.json["error"] == "payload is not valid JSON (JSON nested deeper than 32)"


@pytest.mark.parametrize("version", ["9" * 5000, "9" * 21])
@pytest.mark.parametrize("as_number", [False, True])
def test_a_huge_version_is_422_naming_the_field(hclient, hsvc, version, as_number):
    body = tag_set(version="VERSION").replace(b'"VERSION"',
                                              version.encode() if as_number
                                              else f'"{version}"'.encode())
    resp = post_mlflow(hclient, body)
    assert resp.status_code == 422
    assert resp.json["error"] == (f"field 'data.version' must be a version number of at most "
                                  f"20 digits, got {len(version)} digits")
    body = databricks_body().replace(b'"version": "8"', b'"version": ' + (
        version.encode() if as_number else f'"{version}"'.encode()))
    resp = hclient.post("/webhooks/databricks", data=body, headers=databricks_headers(body))
    assert resp.status_code == 422 and "field 'version' must be a version number" in (
        resp.json["error"])


@pytest.mark.parametrize("data, message", [
    ({"name": ["churn"], "version": "1", "key": "transition_request", "value": "Production"},
     "field 'data.name' must be a string, got an array"),
    ({"name": "churn", "version": {"n": 1}, "key": "transition_request",
      "value": "Production"}, "field 'data.version' must be a string, got an object"),
    ({"name": "churn", "version": True, "key": "transition_request", "value": "Production"},
     "field 'data.version' must be a string, got a boolean"),
    ({"name": "churn", "version": "1", "key": 7.5, "value": "Production"},
     "field 'data.key' must be a string, got a number"),
    ({"name": "churn", "version": "1", "key": "transition_request", "value": ["Production"]},
     "field 'data.value' must be a string, got an array"),
    ({"name": "m" * 201, "version": "1", "key": "transition_request", "value": "Production"},
     "field 'data.name' is longer than 200 characters"),
    ({"name": "churn\u0000", "version": "1", "key": "transition_request",
      "value": "Production"}, "field 'data.name' contains a NUL character"),
])
def test_wrong_json_types_in_a_signed_body_are_422_naming_the_field(hclient, data, message):
    body = mlflow_body("model_version_tag.set", data)
    resp = post_mlflow(hclient, body)
    assert (resp.status_code, resp.json["error"]) == (422, message)


def test_wrong_types_in_the_envelope_and_databricks_fields_are_422(hclient):
    body = json.dumps({"entity": "model_version_tag", "action": ["set"], "data": {}}).encode()
    resp = post_mlflow(hclient, body)
    assert (resp.status_code, resp.json["error"]) == (
        422, "field 'action' must be a string, got an array")
    body = json.dumps({"entity": "e" * 49, "action": "set", "data": {}}).encode()
    assert post_mlflow(hclient, body).status_code == 422
    for change, message in [({"text": {"a": 1}}, "field 'text' must be a string"),
                            ({"to_stage": 3}, "field 'to_stage' must be a string"),
                            ({"model_name": None}, "missing field 'model_name'"),
                            ({"event_timestamp": 10**30}, "milliseconds")]:
        body = databricks_body(**change)
        resp = hclient.post("/webhooks/databricks", data=body,
                            headers=databricks_headers(body))
        assert resp.status_code == 422 and message in resp.json["error"], resp.json


def test_a_5000_character_target_is_a_rejected_request_with_the_value_cut(hclient, hsvc):
    resp = post_mlflow(hclient, tag_set(value="P" * 5000))
    assert resp.status_code == 200, resp.json
    with hsvc.store.read() as conn:
        row = reqs.get(conn, resp.json["request_id"])
    assert row.state == "rejected" and row.raw_target == "P" * 100 + "..."


def test_databricks_ids_too_long_for_the_column_are_hashed(hclient, hsvc):
    body = databricks_body(webhook_id="w" * 64, event="E" * 100, model_name="m" * 200)
    resp = hclient.post("/webhooks/databricks", data=body, headers=databricks_headers(body))
    assert resp.status_code == 200, resp.json
    (row,) = stored(hsvc)
    assert len(row["delivery_id"]) <= 255 and row["delivery_id"].startswith("w" * 64 + ":sha256:")
    again = hclient.post("/webhooks/databricks", data=body, headers=databricks_headers(body))
    assert again.json["duplicate"] is True


def test_a_signed_body_with_nul_bytes_is_kept_as_invalid(hclient, hsvc):
    resp = post_mlflow(hclient, b'{"entity": "x\x00"}')
    assert resp.status_code == 400 and "malformed JSON" in resp.json["error"]
    (row,) = stored(hsvc)
    assert "\x00" not in row["body"]


@pytest.mark.parametrize("field, value, message", [
    ("actions", [{"action_id": "podium_approve", "value": "9" * 5000, "action_ts": "1.2"}],
     "is not a request id"),
    ("actions", [{"action_id": "podium_approve", "value": "9" * 20, "action_ts": "1.2"}],
     "is not a request id"),
    ("actions", [{"action_id": {"x": 1}, "value": "1", "action_ts": "1.2"}],
     "unknown action dict"),
    ("actions", [{"action_id": "podium_approve", "value": "1", "action_ts": ["x"]}],
     "is not a Slack timestamp"),
    ("user", {"id": "U" * 65, "team_id": TEAM}, "payload.user.id is not a Slack id"),
    ("user", {"id": ["U1"]}, "payload.user.id is missing"),
    ("team", {"id": "T:1"}, "payload.team.id is not a Slack id"),
    ("type", {"nested": True}, "unsupported interaction type dict"),
])
def test_odd_slack_payload_fields_are_400(hclient, field, value, message):
    payload = click_payload(1, "U0ALICE", team=TEAM)
    payload[field] = value
    resp = post_slack(hclient, urlencode({"payload": json.dumps(payload)}))
    assert resp.status_code == 400 and message in resp.json["error"], resp.json


# --- the API's URL -----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/requests/" + "9" * 20,
                                  "/api/v1/requests/" + "9" * 5000,
                                  f"/api/v1/requests/{2**63}/approve"])
def test_ids_beyond_a_bigint_are_no_route(hclient, path):
    method = hclient.post if path.endswith("approve") else hclient.get
    resp = method(path, headers={"Authorization": "Bearer test-api-token"})
    assert resp.status_code == 404 and "error" in resp.json


@pytest.mark.parametrize("path", ["/api/v1/requests?model=a%00b",
                                  "/api/v1/requests?state=%00",
                                  "/api/v1/deliveries/a%00b/replay"])
def test_nul_in_the_url_is_400(hclient, path):
    method = hclient.post if path.endswith("replay") else hclient.get
    resp = method(path, headers={"Authorization": "Bearer test-api-token"})
    assert resp.status_code == 400 and "contains a NUL character" in resp.json["error"]


def test_request_get_json_is_depth_limited(hsvc):
    app = create_app(hsvc.settings, services=hsvc)
    app.add_url_rule("/echo", "echo", lambda: jsonify(
        {"silent": request.get_json(silent=True)}), methods=["POST"])
    app.add_url_rule("/strict", "strict", lambda: jsonify(request.get_json()),
                     methods=["POST"])
    client = app.test_client()
    headers = {"Content-Type": "application/json"}
    assert client.post("/echo", data=DEEP, headers=headers).json == {"silent": None}
    assert client.post("/echo", data=b"[1]", headers=headers).json == {"silent": [1]}
    resp = client.post("/strict", data=DEEP, headers=headers)
    assert resp.status_code == 400 and "JSON nested deeper than 32" in resp.json["error"]


# --- metrics: a fixed set of reasons -----------------------------------------------------

def counter_rows(svc) -> dict[str, int]:
    with svc.store.read() as conn:
        return {r.labels: r.value for r in conn.execute(
            select(counters).where(counters.c.name == "rejected_signatures"))}


def test_a_thousand_garbage_timestamps_add_no_label_values_or_counter_rows(hclient, hsvc):
    body = tag_set()
    slack_body = urlencode({"payload": json.dumps(click_payload(1, "U0ALICE"))})
    garbage = [f"x{i}" for i in range(250)] + ["9" * (21 + i) for i in range(250)]
    garbage += [str(1_000_000 + i) for i in range(250)]  # digits, but stale
    garbage += [f"{i}²" for i in range(250)]
    assert len(set(garbage)) == 1000
    for i, stamp in enumerate(garbage):
        if i % 2:
            headers = {**sign(SLACK_SECRET, slack_body), "X-Slack-Request-Timestamp": stamp}
            assert post_slack(hclient, slack_body, headers).status_code == 401
        else:
            assert post_mlflow(hclient, body, **{"X-MLflow-Timestamp": stamp}).status_code == 401
    rows = counter_rows(hsvc)
    assert rows == {"mlflow|malformed": 375, "mlflow|stale": 125,
                    "slack|malformed": 375, "slack|stale": 125}
    text = hclient.get("/metrics").data.decode()
    lines = [ln for ln in text.splitlines() if ln.startswith("podium_rejected_signatures_total")]
    assert sorted(lines) == [
        'podium_rejected_signatures_total{reason="malformed",source="mlflow"} 375.0',
        'podium_rejected_signatures_total{reason="malformed",source="slack"} 375.0',
        'podium_rejected_signatures_total{reason="stale",source="mlflow"} 125.0',
        'podium_rejected_signatures_total{reason="stale",source="slack"} 125.0']


def test_every_refusal_has_one_of_the_fixed_reasons(hclient, hsvc):
    body = tag_set()
    post_mlflow(hclient, body, **{"X-MLflow-Signature": "v1,AAAA"})  # mismatch
    headers = mlflow_headers(body)
    del headers["X-MLflow-Delivery-Id"]
    hclient.post("/webhooks/mlflow", data=body, headers=headers)  # missing
    foreign = urlencode({"payload": json.dumps(click_payload(1, "U0ALICE", team="T0EVIL"))})
    assert post_slack(hclient, foreign).status_code == 403  # unknown_workspace
    hsvc.databricks_source = DatabricksSource(None)  # unconfigured
    hclient.post("/webhooks/databricks", data=b"{}",
                 headers={"Content-Type": "application/json"})
    rows = counter_rows(hsvc)
    assert rows == {"mlflow|mismatch": 1, "mlflow|missing": 1, "slack|unknown_workspace": 1,
                    "databricks|unconfigured": 1}
    assert {label.split("|")[1] for label in rows} <= set(REJECTION_REASONS)


def test_counter_rows_with_free_text_from_older_versions_are_exported_as_other(hclient,
                                                                                 hsvc):
    incr(hsvc.store, "rejected_signatures",
         "mlflow|X-MLflow-Timestamp is not a unix time: 'garbage'")
    incr(hsvc.store, "rejected_signatures", "evil|stale")
    text = hclient.get("/metrics").data.decode()
    assert 'podium_rejected_signatures_total{reason="other",source="mlflow"} 1.0' in text
    assert 'podium_rejected_signatures_total{reason="stale",source="other"} 1.0' in text
    assert "garbage" not in text and "evil" not in text


# --- /readyz and the unsigned banner -----------------------------------------------------

def test_readyz_asks_mlflow_at_most_once_per_ttl(hsvc, monkeypatch):
    calls = []
    monkeypatch.setattr(health, "_mlflow", lambda uri: calls.append(uri) or "ok")
    settings = hsvc.settings.replace(mlflow_tracking_uri="http://127.0.0.1:9")
    app = create_app(settings, services=hsvc)
    now = [1000.0]
    app.extensions["podium.readyz.mlflow"] = health.CachedCheck(
        lambda uri: health._mlflow(uri), ttl_s=5, clock=lambda: now[0])
    client = app.test_client()
    for _ in range(10):
        assert client.get("/readyz").json["checks"]["mlflow"] == "ok"
    assert calls == ["http://127.0.0.1:9"]
    now[0] += 5.1
    client.get("/readyz")
    assert len(calls) == 2


def test_readyz_caches_with_the_default_clock(hsvc, monkeypatch):
    calls = []
    monkeypatch.setattr(health, "_mlflow", lambda uri: calls.append(uri) or "ok")
    app = create_app(hsvc.settings.replace(mlflow_tracking_uri="http://127.0.0.1:9"),
                     services=hsvc)
    client = app.test_client()
    client.get("/readyz"), client.get("/readyz")
    assert len(calls) == 1 and health.MLFLOW_CHECK_TTL_S >= 2


@pytest.mark.parametrize("how", ["settings", "environment"])
def test_the_unsigned_banner_shows_however_insecure_mode_was_set(db_url, caplog, how,
                                                                 monkeypatch):
    if how == "settings":
        settings = make_settings(db_url, mlflow_webhook_secret=None, insecure_no_signature=True)
    else:
        from webhook_server.core.settings import Settings

        monkeypatch.setenv("PODIUM_INSECURE_NO_SIGNATURE", "true")
        settings = Settings.from_env(database_url=db_url)
    svc = build(settings)
    svc.store.migrate()
    try:
        with caplog.at_level(logging.WARNING, logger="webhook_server.web.app"):
            app = create_app(settings, services=svc)
        assert UNSIGNED_BANNER in caplog.text
        assert app.test_client().get("/readyz").json["warnings"] == [UNSIGNED_BANNER]
    finally:
        svc.close()


def test_no_banner_when_deliveries_are_signed(hsvc, caplog):
    with caplog.at_level(logging.WARNING, logger="webhook_server.web.app"):
        app = create_app(hsvc.settings, services=hsvc)
    assert "UNSIGNED" not in caplog.text
    assert "warnings" not in app.test_client().get("/readyz").json
