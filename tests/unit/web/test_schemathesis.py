"""Fuzz every route: schemathesis over ``/api/v1/openapi.json`` against the Flask app (WSGI,
in-process, with the token), and hypothesis over the webhook and Slack routes' headers.
Whatever comes in, the answer is never a 5xx, and the API's answers are those its document
describes. Examples are limited so the file runs in well under a minute."""

import json
from urllib.parse import urlencode

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.registry import MemoryRegistry
from tests.support.settings import API_TOKEN, make_settings
from tests.support.signing import databricks_body, databricks_headers, mlflow_headers, tag_set
from webhook_server.dev.fakes.slack import click_payload, sign
from webhook_server.intake.events import TransitionRequested
from webhook_server.intake.sources import Delivery
from webhook_server.service.services import build
from webhook_server.web.app import create_app
from webhook_server.web.routes import openapi
from webhook_server.web.routes.openapi import document

SLACK_SECRET = "fuzz-signing-secret"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]
FAST = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def fuzz_svc(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'podium.db'}"
    svc = build(make_settings(url, slack_signing_secret=SLACK_SECRET,
                              slack_team_id="T0PODIUM"))
    svc.store.migrate()
    svc.registry = MemoryRegistry({"champion": "1"})
    for version in ("2", "3"):  # something to find, decide and replay
        svc.intake.record(Delivery("api", f"seed-{version}", "api.request", "{}",
                                   TransitionRequested("churn", version, "Production", "api")))
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def fuzz_app(fuzz_svc):
    return create_app(fuzz_svc.settings, services=fuzz_svc)


def _served_document():
    """The document as the route serves it (the route needs no store: a bare app)."""
    app = Flask(__name__)
    app.register_blueprint(openapi.bp)
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # unknown query parameters are ignored, as HTTP APIs do: not a negative case
    loaded.config.generation.update(modes=["positive", "negative"], max_examples=25,
                                    deterministic=True, allow_extra_parameters=False)
    return loaded


# schemathesis' fixture-based loader does not run under pytest 9; the document is served by
# a bare app at import and every case is sent to the full app (``app=``) in the test
schema = _served_document()


@schema.parametrize()
@FAST
def test_the_api_answers_what_its_document_says_and_never_5xx(case, fuzz_app):
    case.call_and_validate(app=fuzz_app, headers=AUTH, checks=CHECKS)


# --- the document itself -----------------------------------------------------------------

def test_the_document_describes_every_api_route(fuzz_app):
    doc = fuzz_app.test_client().get("/api/v1/openapi.json").json
    assert doc == document() and doc["openapi"].startswith("3.")
    routes = {(rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}"), method)
              for rule in fuzz_app.url_map.iter_rules() if rule.rule.startswith("/api/v1")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    described = {(path, method.upper()) for path, ops in doc["paths"].items()
                 for method in ops}
    assert routes == described
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"][
            "securitySchemes"]["bearer"]["description"]}
    assert doc["components"]["schemas"]["Error"]["properties"] == {"error": {"type": "string"}}
    reject = doc["paths"]["/api/v1/requests/{request_id}/reject"]["post"]
    assert reject["requestBody"]["required"] is True
    assert doc["components"]["schemas"]["Rejection"]["required"] == ["reason"]
    assert doc["paths"]["/api/v1/openapi.json"]["get"]["security"] == []


def test_the_document_needs_no_token_and_every_other_route_does(fuzz_app):
    client = fuzz_app.test_client()
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/api/v1/requests").status_code == 401


# --- hypothesis over the webhook and Slack routes' headers -------------------------------

HEADER_TEXT = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
            max_size=60),
    st.text("0123456789", min_size=1, max_size=40),
    st.integers(-(10**30), 10**30).map(str),
    st.text("0123456789", min_size=1, max_size=8).map(lambda s: s * 700),  # thousands
)
HEADERS = {
    "mlflow": ["X-MLflow-Delivery-Id", "X-MLflow-Timestamp", "X-MLflow-Signature"],
    "databricks": ["X-Databricks-Signature"],
    "slack": ["X-Slack-Request-Timestamp", "X-Slack-Signature"],
}


def _signed(route: str):
    if route == "mlflow":
        body = tag_set()
        return "/webhooks/mlflow", body, mlflow_headers(body)
    if route == "databricks":
        body = databricks_body()
        return "/webhooks/databricks", body, databricks_headers(body)
    body = urlencode({"payload": json.dumps(click_payload(1, "U0ALICE"))})
    return "/slack/interactions", body, sign(SLACK_SECRET, body)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_header_values_never_get_a_5xx(fuzz_app, data):
    route = data.draw(st.sampled_from(sorted(HEADERS)))
    path, body, headers = _signed(route)
    for name in data.draw(st.sets(st.sampled_from(HEADERS[route]), min_size=1)):
        if data.draw(st.booleans(), label=f"drop {name}") and len(headers) > 1:
            headers.pop(name)
        else:
            headers[name] = data.draw(HEADER_TEXT, label=name)
    resp = fuzz_app.test_client().post(path, data=body, headers=headers)
    assert resp.status_code < 500, (resp.status_code, resp.get_data(as_text=True))
    assert resp.status_code in (200, 400, 401, 403, 409, 415, 422), resp.json
    if resp.status_code != 200:
        assert isinstance(resp.json["error"], str)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(payload=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children,
                                                                      max_size=3),
    max_leaves=10))
def test_random_signed_json_never_gets_a_5xx(fuzz_app, payload):
    client = fuzz_app.test_client()
    body = json.dumps({"entity": "model_version_tag", "action": "set", "data": payload})
    resp = client.post("/webhooks/mlflow", data=body.encode(),
                       headers=mlflow_headers(body.encode()))
    assert resp.status_code < 500, resp.get_data(as_text=True)
    form = urlencode({"payload": json.dumps(payload)})
    resp = client.post("/slack/interactions", data=form, headers=sign(SLACK_SECRET, form))
    assert resp.status_code < 500, resp.get_data(as_text=True)
